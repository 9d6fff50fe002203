"""Device/host split: a device holds keys and speaks the wire protocol; its host reads
the chain for it and pays for its transactions.

The device runs an ordinary `Node` whose chain access is a `HostAccess`: a peer link to
its host over any transport. The host (`DeviceHost`) streams the device the hub
events of channels it is a party of, and carries out the transactions its
channel machine asks for, funded from the host's own account (the contract lets
anyone fund a party's deposit). Host messages travel in the same authenticated
sessions as channel messages, each side with its own codec
(`m2mpay.node.host_protocol`; the device side is `m2mpay.node.host_access`).

A host given a `Watchtower` also relays its devices' watcher traffic: the device
signs its registration with its own key and sends it, and later each newer proof,
over the host session (`HostWatchRegister`, `HostWatchProof`); the host passes them
on unchanged and answers with the watcher's reply (`HostWatchResult`). The device
keeps its token. `HostAccess.watchtower` is that relay as a `Watchtower`, so the same
feed keeps a watcher up to date for a device and for a node with its own ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
import typing
from collections.abc import Callable
from typing import Final

from m2mpay.chain.hub import ChannelHub
from m2mpay.chain.ledger import Ledger
from m2mpay.channel.inputs import ChainOpened
from m2mpay.channel.outputs import CloseTx, DepositTx, OpenTx, TxRequest
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import (
    AuthenticationFailed,
    ContractError,
    LedgerError,
    MalformedMessage,
    TransportError,
)
from m2mpay.lifecycle import cancel_all, run_in_background
from m2mpay.node.chain_access import ChainInput, hub_inputs, log_input
from m2mpay.node.effects import Funder, execute
from m2mpay.node.host_access import HostAccess
from m2mpay.node.host_protocol import (
    HostEvents,
    HostExecute,
    HostHello,
    HostMessage,
    HostRefused,
    HostResult,
    HostStatus,
    HostWatchProof,
    HostWatchRegister,
    HostWatchResult,
    send_on,
)
from m2mpay.node.watch import (
    WatchError,
    WatchErrorKind,
    WatchRefused,
    Watchtower,
    WatchUnavailable,
)
from m2mpay.wire import Link, PeerLink, Transport, codec_by_name, open_peer_link

__all__ = [
    "DeviceHost",
    "DevicePolicy",
    "HostAccess",
    "HostEvents",
    "HostExecute",
    "HostHello",
    "HostRefused",
    "HostResult",
    "HostStatus",
    "HostWatchProof",
    "HostWatchRegister",
    "HostWatchResult",
    "default_policy",
]

log = logging.getLogger("m2mpay.host")

_STATUS_INTERVAL_S: Final = 1.0


# -- the host side

DevicePolicy = Callable[[Address, TxRequest], str | None]


def default_policy(device: Address, tx: TxRequest) -> str | None:
    """Fund and send only what concerns the device's own channels and its own deposits."""
    if device not in (tx.terms.a, tx.terms.b):
        return "the device is not a party of this channel"
    if isinstance(tx, OpenTx) and tx.terms.a != device:
        return "a device may only open channels it proposed"
    if isinstance(tx, DepositTx) and tx.participant != device:
        return "a device may only fund its own deposit"
    if isinstance(tx, CloseTx):
        # The contract lets only a party close unilaterally, with its own account.
        return "a unilateral close must be sent by the device itself"
    return None


class DeviceHost:
    """Serves devices: streams them their channels' events and carries out their
    transactions; with a `watchtower`, relays their registrations and proofs to it."""

    def __init__(
        self,
        key: PrivateKey,
        ledger: Ledger,
        hub: Address,
        transport: Transport,
        *,
        codec: str = "json",
        allow: Callable[[Address], bool] | None = None,
        policy: DevicePolicy = default_policy,
        start_block: int = 0,
        watchtower: Watchtower | None = None,
    ) -> None:
        self.key = key
        self._ledger = ledger
        self._hub = ChannelHub(ledger, hub)
        self._transport = transport
        self._codec = codec_by_name(codec)
        self._allow = allow or (lambda _device: True)
        self._policy = policy
        self._start_block = start_block
        self._funder = Funder(self._hub, key)
        self._parties: dict[bytes, tuple[Address, Address]] = {}
        self._devices: dict[Address, PeerLink] = {}
        self._subscribed: set[Address] = set()
        self._feed = asyncio.Lock()  # what devices get from the chain goes out in order
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchtower = watchtower
        self._watcher: Address | None = None

    @property
    def endpoint(self) -> str:
        return self._transport.endpoint

    @property
    def watcher(self) -> Address | None:
        """The watcher this host relays to, once started."""
        return self._watcher

    async def start(self) -> None:
        if self._watchtower is not None:
            # Devices sign registrations for this identity: it must be our chain and hub.
            identity = await self._watchtower.identity()
            if (identity.chain_id, identity.hub) != (self._ledger.chain_id, self._hub.address):
                raise ContractError(
                    f"the watcher {identity.address} defends hub {identity.hub} on chain"
                    f" {identity.chain_id}, not this host's hub {self._hub.address} on chain"
                    f" {self._ledger.chain_id}"
                )
            self._watcher = identity.address
        await self._transport.start()
        head = await self._ledger.block_number()
        for inp in await self._inputs(self._start_block, head):
            self._learn(inp)
        self._spawn(self._follow(head + 1))
        self._spawn(self._accept_loop())
        self._spawn(self._send_status())

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        for session in list(self._devices.values()):
            await session.close()
        await self._transport.stop()

    async def __aenter__(self) -> DeviceHost:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def _spawn(self, coro: typing.Coroutine[typing.Any, typing.Any, None]) -> None:
        run_in_background(self._tasks, coro)

    # -- the chain

    async def _inputs(self, from_block: int, to_block: int) -> list[ChainInput]:
        return await hub_inputs(self._ledger, self._hub.address, from_block, to_block)

    def _learn(self, inp: ChainInput) -> None:
        if isinstance(inp, ChainOpened):
            self._parties[inp.channel_id] = (inp.a, inp.b)

    def _concerns(self, device: Address, inp: ChainInput) -> bool:
        return device in self._parties.get(inp.channel_id, ())

    async def _follow(self, from_block: int) -> None:
        async for entry in self._ledger.subscribe(address=self._hub.address, from_block=from_block):
            inp = log_input(entry)
            if inp is None or entry.removed:
                # Devices are not told of reorganisations yet: a retracted event is not
                # passed on as if it were new, the new chain's events are.
                continue
            async with self._feed:
                self._learn(inp)
                for device in list(self._subscribed):
                    if self._concerns(device, inp):
                        await self._send(device, HostEvents((inp,), entry.block_number))

    async def _send_status(self) -> None:
        while True:
            if self._devices:
                try:
                    status = await self._status()
                except LedgerError as exc:
                    log.warning("cannot read the chain: %s", exc)
                else:
                    for device in list(self._devices):
                        await self._send(device, status)
            await asyncio.sleep(_STATUS_INTERVAL_S)

    async def _status(self) -> HostStatus:
        head = await self._ledger.block_number()
        chain_time = max(await self._ledger.block_timestamp(), int(time.time()))
        self._funder.saw_chain_time(chain_time)
        return HostStatus(
            self._ledger.chain_id,
            self._hub.address,
            head,
            chain_time,
            self._watcher,
            self._ledger.genesis_hash,
        )

    # -- devices

    async def _accept_loop(self) -> None:
        while True:
            link = await self._transport.accept()
            self._spawn(self._serve(link))

    async def _serve(self, link: Link) -> None:
        try:
            session = await open_peer_link(link, self.key, self._codec)
        except (AuthenticationFailed, MalformedMessage, TransportError) as exc:
            log.info("refused a device: %s", exc)
            return
        device = session.peer
        if not self._allow(device):
            log.info("device %s is not allowed", device)
            await session.close()
            return
        old = self._devices.get(device)
        self._devices[device] = session
        # A new session gets live events only once its hello is answered (see `_hello`).
        self._subscribed.discard(device)
        if old is not None:
            await old.close()
        try:
            await send_on(session, await self._status())
            while True:
                try:
                    message = await session.recv()
                except MalformedMessage as exc:
                    await send_on(session, HostRefused(str(exc)[:900]))
                    continue
                await self._handle(device, message)
        except (TransportError, AuthenticationFailed) as exc:
            log.info("device %s left: %s", device, exc)
        finally:
            if self._devices.get(device) is session:
                del self._devices[device]
                self._subscribed.discard(device)
            await session.close()

    async def _handle(self, device: Address, message: object) -> None:
        if isinstance(message, HostHello):
            await self._hello(device, message.start_block)
        elif isinstance(message, HostExecute):
            self._spawn(self._execute(device, message))
        elif isinstance(message, HostWatchRegister | HostWatchProof):
            self._spawn(self._relay(device, message))
        else:
            await self._send(device, HostRefused(f"{type(message).__name__} is not for a host"))

    async def _hello(self, device: Address, start_block: int) -> None:
        """Answer with the history from `start_block`, then stream live events.

        A device resuming after a lost session relies on this order: the history
        first, then live events in chain order with none left out in between (repeats
        of the history's blocks it skips). Holding `_feed` keeps `_follow` from sending
        meanwhile; whatever it sent before is in the history (mined by `head`), and
        whatever it sends after is either in it too or newer.
        """
        async with self._feed:
            head = await self._ledger.block_number()
            history = []
            for inp in await self._inputs(start_block, head):
                self._learn(inp)  # `_follow` may not have seen this channel's opening yet
                if self._concerns(device, inp):
                    history.append(inp)
            await self._send(device, HostEvents(tuple(history), head))
            self._subscribed.add(device)

    async def _execute(self, device: Address, request: HostExecute) -> None:
        refusal = self._policy(device, request.tx)
        if refusal is not None:
            await self._send(device, HostResult(request.request_id, False, refusal))
            return
        try:
            await execute(self._hub, self.key, request.tx, self._funder)
        except LedgerError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            await self._send(device, HostResult(request.request_id, False, reason[:900]))
            return
        await self._send(device, HostResult(request.request_id, True, ""))

    async def _relay(self, device: Address, request: HostWatchRegister | HostWatchProof) -> None:
        """Pass a device's registration or proof to the watcher; answer with its reply."""
        party = (
            request.registration.party
            if isinstance(request, HostWatchRegister)
            else request.proof.party
        )
        token = ""
        try:
            if self._watchtower is None:
                raise WatchUnavailable("this host relays to no watcher")
            if party != device:
                # The watcher would refuse it too; a relay should not carry it that far.
                raise WatchRefused(
                    WatchErrorKind.INVALID,
                    "not_the_device",
                    f"a device may only speak for itself ({device}), not for {party}",
                    "party",
                )
            if isinstance(request, HostWatchRegister):
                token = await self._watchtower.register(request.registration)
            else:
                await self._watchtower.update(request.proof)
        except (WatchRefused, WatchUnavailable) as exc:
            log.info("watcher request of device %s not done: %s", device, exc)
            await self._send(device, HostWatchResult(request.request_id, "", WatchError.of(exc)))
            return
        except Exception as exc:
            # Whatever went wrong on our side, the device must get an answer it can retry.
            log.exception("relaying a watcher request of device %s failed", device)
            failed = WatchError.of(WatchUnavailable(f"the host failed to relay: {exc!r}"))
            await self._send(device, HostWatchResult(request.request_id, "", failed))
            return
        await self._send(device, HostWatchResult(request.request_id, token))

    async def _send(self, device: Address, message: HostMessage) -> None:
        session = self._devices.get(device)
        if session is None:
            return
        try:
            await send_on(session, message)
        except TransportError as exc:
            log.info("lost device %s: %s", device, exc)
