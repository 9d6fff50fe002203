"""The running node: feeds inputs from peers, the chain, the clock and the API into
the channel machine, durably, and performs its outputs in one dispatcher.

Log, then act: the channel machine runs on a `DurableEngine`, which logs every
input with its outputs before they are performed and shares one flush among
many inputs (group commit). `_perform` is the one place where messages are sent,
transactions submitted and the application told.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

from m2mpay.channel.context import ChannelContext, ProtocolConfig
from m2mpay.channel.inputs import (
    ForceClose,
    Input,
    Pay,
    Propose,
    Received,
    RequestClose,
    Resync,
    Tick,
    TopUp,
)
from m2mpay.channel.machine import channel_key
from m2mpay.channel.messages import MESSAGE_TYPES, ChannelTerms, Message
from m2mpay.channel.outputs import (
    ChannelEvent,
    Output,
    Rejected,
)
from m2mpay.channel.state import ChannelState, Phase
from m2mpay.crypto import Address, PrivateKey, channel_domain
from m2mpay.engine import EngineHost
from m2mpay.errors import ChannelError, LedgerError
from m2mpay.node.chain_follow import ChainFollower
from m2mpay.node.chain_link import ChainLink
from m2mpay.node.channel_machine import ChannelMachine
from m2mpay.node.dispatch import ChannelDispatch
from m2mpay.node.info import ChannelInfo, PaymentHandle, PaymentWait
from m2mpay.node.notifier import ChannelListener, ChannelNotifier
from m2mpay.node.peers import Peers, PeersConfig
from m2mpay.store import Store
from m2mpay.wire import Transport, codec_by_name

__all__ = ["Node", "NodeConfig"]

log = logging.getLogger("m2mpay.node")

_TIMED_PHASES: Final = frozenset({Phase.PROPOSED, Phase.ACCEPTED, Phase.CLOSING, Phase.DISPUTED})
_PEER_KEY: Final = "peer:"

AcceptPolicy = Callable[[ChannelTerms], bool]


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    codec: str = "cbor"
    accept: AcceptPolicy | bool = True  # which proposals to accept (True: all)
    max_in_flight: int = 4096  # unacknowledged payments per channel before pay() waits
    tick_interval_s: float = 1.0
    snapshot_every: int = 50_000  # records between snapshots
    proposal_ttl_ms: int = 60_000
    challenge_period: int = 3600  # seconds, for channels we propose
    start_block: int = 0  # where a new node starts reading hub events
    reconnect_delay_s: float = 0.5
    reconnect_max_delay_s: float = 10.0
    handshake_timeout_s: float = 10.0
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)


class Node(EngineHost[bytes, ChannelState, Input, Output]):
    """A party to payment channels: the small Python API over the whole engine."""

    _what = "node"
    _log = log

    def __init__(
        self,
        key: PrivateKey,
        chain: ChainLink,
        store: Store,
        *,
        transport: Transport | None = None,
        config: NodeConfig | None = None,
    ) -> None:
        self.key = key
        self.config = config or NodeConfig()
        self._chain = chain
        self._ctx: ChannelContext | None = None
        super().__init__(
            ChannelMachine(lambda: self._ctx), store, snapshot_every=self.config.snapshot_every
        )
        self.peers = Peers(
            key,
            transport,
            codec_by_name(self.config.codec),
            PeersConfig(
                self.config.handshake_timeout_s,
                self.config.reconnect_delay_s,
                self.config.reconnect_max_delay_s,
            ),
            spawn=self._spawn,
            after_message=self._engine.yield_if_busy,
        )
        self.peers.route(MESSAGE_TYPES, self._on_channel_message)
        self.peers.on_session(self._on_session)
        self.peers.on_endpoint(self._remember_endpoint)
        self._timed: set[bytes] = set()
        self._notifier = ChannelNotifier(self._engine.state, lambda: self._failure)
        self._dispatch = ChannelDispatch(
            self.peers,
            chain,
            self._notifier,
            handle=self._handle,
            spawn=self._spawn,
            running=lambda: self._running,
            accept=self.config.accept,
        )
        self._tx_failures = self._dispatch.tx_failures
        self._endpoints: dict[Address, str] = {}
        self._follower = ChainFollower(
            chain,
            key.address,
            lambda: self._engine.states,
            self._handle,
            self._engine.put_meta,
            start_block=self.config.start_block,
        )
        self.caught_up = self._follower.caught_up

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> Address:
        return self.key.address

    @property
    def endpoint(self) -> str | None:
        return self.peers.endpoint

    @property
    def chain(self) -> ChainLink:
        return self._chain

    async def start(self) -> None:
        """Recover from the store, then start listening, following the chain and ticking."""
        await self._chain.start()
        self.peers.chain = self._chain.genesis_hash
        self._ctx = ChannelContext(
            self.key, channel_domain(self._chain.chain_id, self._chain.hub), self.config.protocol
        )
        await self._engine.store.open()
        await self._recover()
        self._run_engine()
        self._spawn(self._follower.run())
        self._spawn(self._every(self.config.tick_interval_s, self._tick))
        await self.peers.start()
        for peer, endpoint in self._endpoints.items():
            self.peers.keep_connected(peer, endpoint)

    async def stop(self) -> None:
        """Finish what is durable, snapshot, and release everything."""
        if not await self._stop_engine():
            return
        await self.peers.stop()
        await self._close_store()
        await self._chain.stop()
        self._notifier.fail_payments(ChannelError("stopped", "the node stopped"))

    def _refusal(self, code: str, message: str) -> ChannelError:
        return ChannelError("node_failed" if code == "failed" else code, message)

    def _ensure_running(self) -> ChannelContext:
        self._check_running()
        if self._ctx is None:
            raise ChannelError("not_running", "the node is not running")
        return self._ctx

    # ------------------------------------------------------------------ recovery

    async def _recover(self) -> None:
        recovered = await self._engine.recover()
        self._follower.restore(recovered.meta)
        for meta_key, value in recovered.meta.items():
            if meta_key.startswith(_PEER_KEY):
                self._endpoints[Address(meta_key[len(_PEER_KEY) :])] = value.decode()
        self._timed = {c for c, s in self._channels.items() if s.phase in _TIMED_PHASES}
        if recovered.records or recovered.snapshot:
            log.info(
                "recovered %d channels from %d log records",
                len(self._channels),
                len(recovered.records),
            )

    # ------------------------------------------------------------------ the engine and effects

    @property
    def _channels(self) -> dict[bytes, ChannelState]:
        return self._engine.states

    def _on_change(self, channel: bytes, state: ChannelState) -> None:
        if state.phase in _TIMED_PHASES:
            self._timed.add(channel)
        else:
            self._timed.discard(channel)

    async def _perform(self, outputs: list[Output]) -> None:
        await self._dispatch.perform(outputs)

    def _perform_refusal(self, outputs: tuple[Output, ...]) -> None:
        self._dispatch.perform_refusal(outputs)

    # ------------------------------------------------------------------ peers

    async def connect(self, endpoint: str, peer: Address | None = None) -> Address:
        """Open an authenticated session to the node at `endpoint`; returns its address."""
        self._ensure_running()
        return await self.peers.connect(endpoint, peer)

    def is_connected(self, peer: Address) -> bool:
        return self.peers.is_connected(peer)

    def _on_channel_message(self, peer: Address, message: Message) -> None:
        self._handle(Received(peer, message, _now_ms()))

    def _on_session(self, peer: Address) -> None:
        for channel, state in self._channels.items():
            if state.peer == peer:
                self._handle(Resync(channel))

    def _remember_endpoint(self, peer: Address, endpoint: str) -> None:
        if self._endpoints.get(peer) != endpoint:
            self._endpoints[peer] = endpoint
            self._engine.put_meta(_PEER_KEY + peer.checksum, endpoint.encode())

    # ------------------------------------------------------------------ the chain

    async def _tick(self) -> None:
        if not self._timed:
            return
        try:
            chain_time = max(await self._chain.chain_time(), int(time.time()))
        except LedgerError as exc:
            log.warning("cannot read the chain clock: %s", exc)
            return
        now = _now_ms()
        for channel in list(self._timed):
            self._handle(Tick(channel, now, chain_time))

    # ------------------------------------------------------------------ the API

    def channels(self) -> list[ChannelInfo]:
        return [ChannelInfo.of(state) for state in self._channels.values()]

    def channel(self, channel_id: bytes) -> ChannelInfo:
        state = self._channels.get(channel_id)
        if state is None:
            raise ChannelError("unknown_channel", f"no channel 0x{channel_id.hex()}")
        return ChannelInfo.of(state)

    def _raise_if_rejected(self, outputs: tuple[Output, ...]) -> None:
        for output in outputs:
            if isinstance(output, Rejected):
                raise ChannelError(output.code.value, output.message)

    async def open_channel(
        self,
        peer: Address,
        asset: Address,
        deposit: int,
        *,
        peer_deposit: int = 0,
        challenge_period: int | None = None,
        endpoint: str | None = None,
        timeout: float = 60.0,
    ) -> ChannelInfo:
        """Propose a channel, have it accepted, fund it on chain; returns once it is open
        (and, if `peer_deposit` was agreed, once the peer has funded it too)."""
        self._ensure_running()
        if not self.peers.is_connected(peer):
            target = endpoint or self._endpoints.get(peer)
            if target is None:
                raise ChannelError("no_route", f"no session with {peer} and no endpoint given")
            await self.connect(target, peer)
            self.peers.keep_connected(peer, target)
        inp = Propose(
            peer,
            asset,
            deposit,
            peer_deposit,
            challenge_period or self.config.challenge_period,
            secrets.randbits(64),
            _now_ms(),
            self.config.proposal_ttl_ms,
        )
        self._raise_if_rejected(self._handle(inp))
        channel = channel_key(self._ensure_running(), inp)
        assert channel is not None
        state = await self._notifier.wait(
            channel,
            lambda s: (
                s.phase not in (Phase.PROPOSED, Phase.ACCEPTED)
                and (s.phase is not Phase.OPEN or s.deposit_b >= peer_deposit)
            ),
            timeout,
        )
        if state.phase is not Phase.OPEN:
            raise ChannelError(
                state.phase.value, f"channel 0x{channel.hex()} is {state.phase.value}"
            )
        return ChannelInfo.of(state)

    def pay_nowait(self, channel_id: bytes, amount: int) -> PaymentHandle:
        """Sign and queue a payment now; `acknowledged` resolves once the payee made it durable.

        Raises `ChannelError` at once for an unknown channel, a channel that is not
        open, a non-positive amount or one above our balance, and when
        `max_in_flight` payments already await acknowledgement.
        """
        if self._notifier.in_flight(channel_id) >= self.config.max_in_flight:
            raise ChannelError("backpressure", "too many payments await acknowledgement")
        self._raise_if_rejected(self._handle(Pay(channel_id, amount)))
        state = self._channels[channel_id]
        future = self._notifier.expect_ack(channel_id, state.sent_seq)
        return PaymentHandle(channel_id, amount, state.sent_total, state.sent_seq, future)

    async def pay(
        self,
        channel_id: bytes,
        amount: int,
        *,
        wait: PaymentWait = PaymentWait.ACKNOWLEDGED,
        timeout: float = 30.0,
    ) -> PaymentHandle:
        """Pay `amount` and return once the payment is as far as `wait` says: queued
        (signed; a loop of such calls streams payments at full speed), durable in our
        log, or acknowledged by the payee as durable in its own.

        Whatever `wait` says, it waits while `max_in_flight` payments are
        unacknowledged (backpressure); `timeout` bounds each wait.
        """
        # asyncio.timeout rather than wait_for: on Python 3.11, wait_for loses a
        # cancellation that arrives just as the awaited future completes.
        while self._notifier.in_flight(channel_id) >= self.config.max_in_flight:
            oldest = self._notifier.oldest_unacknowledged(channel_id)
            assert oldest is not None
            async with asyncio.timeout(timeout):
                await asyncio.shield(oldest)
        handle = self.pay_nowait(channel_id, amount)
        await self._engine.yield_if_busy()
        if wait is PaymentWait.ACKNOWLEDGED:
            async with asyncio.timeout(timeout):
                await asyncio.shield(handle.acknowledged)
        elif wait is PaymentWait.DURABLE:
            async with asyncio.timeout(timeout):
                await self.flushed()
        return handle

    async def flushed(self) -> None:
        """Return once everything asked of the node so far is durable and under way
        (a payment made with `pay_nowait` is then signed, logged and sent)."""
        await self._engine.durable()

    async def top_up(self, channel_id: bytes, amount: int, *, timeout: float = 60.0) -> ChannelInfo:
        before = self._channels.get(channel_id)
        target = (before.my_deposit if before else 0) + amount
        self._tx_failures.pop((channel_id, "deposit"), None)
        self._raise_if_rejected(self._handle(TopUp(channel_id, amount)))
        state = await self._notifier.wait(
            channel_id,
            lambda s: s.my_deposit >= target or (channel_id, "deposit") in self._tx_failures,
            timeout,
        )
        if state.my_deposit < target:
            reason = self._tx_failures.pop((channel_id, "deposit"), "not confirmed")
            raise ChannelError("top_up_failed", f"the deposit did not go through: {reason}")
        return ChannelInfo.of(state)

    async def close(self, channel_id: bytes, *, timeout: float = 120.0) -> ChannelInfo:
        """Close cooperatively (falling back to a unilateral close if the peer does not
        answer); returns once the chain shows the channel closed or in dispute."""
        self._raise_if_rejected(self._handle(RequestClose(channel_id, _now_ms())))
        state = await self._notifier.wait(
            channel_id,
            lambda s: s.phase in (Phase.CLOSED, Phase.SETTLED, Phase.DISPUTED),
            timeout,
        )
        return ChannelInfo.of(state)

    async def force_close(self, channel_id: bytes, *, timeout: float = 60.0) -> ChannelInfo:
        """Close unilaterally with our newest proofs; returns once the close is on chain."""
        self._tx_failures.pop((channel_id, "close"), None)
        self._raise_if_rejected(self._handle(ForceClose(channel_id)))
        state = await self._notifier.wait(
            channel_id,
            lambda s: (
                s.phase in (Phase.DISPUTED, Phase.SETTLED, Phase.CLOSED)
                or (channel_id, "close") in self._tx_failures
            ),
            timeout,
        )
        failure = self._tx_failures.pop((channel_id, "close"), None)
        if failure is not None and state.phase not in (Phase.DISPUTED, Phase.SETTLED, Phase.CLOSED):
            raise ChannelError("close_failed", failure)
        return ChannelInfo.of(state)

    async def wait_closed(self, channel_id: bytes, *, timeout: float = 120.0) -> ChannelInfo:
        """Wait until the channel is paid out (cooperatively or after a dispute)."""
        state = await self._notifier.wait(
            channel_id, lambda s: s.phase in (Phase.CLOSED, Phase.SETTLED), timeout
        )
        return ChannelInfo.of(state)

    def add_listener(self, listener: ChannelListener) -> None:
        """Call `listener(event, state)` for every channel event, once it is durable.

        Synchronous and on the node's loop: a listener that has I/O to do queues
        it (a watcher feed, say) instead of blocking the dispatcher.
        """
        self._notifier.add_listener(listener)

    def remove_listener(self, listener: ChannelListener) -> None:
        """Stop calling a listener given to `add_listener` (unknown ones are ignored)."""
        self._notifier.remove_listener(listener)

    def channel_states(self) -> list[ChannelState]:
        """Every channel's whole state, with the newest proof the peer signed us.

        For services that act on the proofs themselves (a watcher feed); applications
        want `channels()`.
        """
        return list(self._channels.values())

    async def events(self, *, buffer: int = 10_000) -> AsyncIterator[ChannelEvent]:
        """Every channel event from now on (payments received, opened, closed, …)."""
        async for event in self._notifier.events(buffer):
            yield event
