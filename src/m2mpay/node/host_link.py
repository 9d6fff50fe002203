"""The device side of the device/host split: the chain (and a watcher) through the host.

See `m2mpay.node.host` for the whole picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from m2mpay.channel.outputs import TxRequest
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import (
    AuthenticationFailed,
    LedgerUnavailable,
    MalformedMessage,
    TransactionReverted,
    TransportError,
)
from m2mpay.node.chain_link import ChainInput, ChainLink
from m2mpay.node.host_protocol import (
    HostEvents,
    HostExecute,
    HostHello,
    HostRefused,
    HostResult,
    HostStatus,
    HostWatchProof,
    HostWatchRegister,
    HostWatchResult,
    send_on,
)
from m2mpay.node.watch import (
    ProofUpdate,
    SignedRegistration,
    TowerIdentity,
    Watchtower,
    WatchUnavailable,
)
from m2mpay.wire import PeerSession, Transport, codec_by_name, open_session

__all__ = ["HostLink"]

log = logging.getLogger("m2mpay.host")


class HostLink(ChainLink):
    """The chain as a device sees it: through one session to its host."""

    def __init__(
        self,
        key: PrivateKey,
        transport: Transport,
        endpoint: str,
        *,
        host: Address | None = None,
        codec: str = "cbor",
        request_timeout: float = 120.0,
    ) -> None:
        self._key = key
        self._transport = transport
        self._endpoint = endpoint
        self._host = host
        self._codec = codec_by_name(codec)
        self._timeout = request_timeout
        self._session: PeerSession | None = None
        self._status: HostStatus | None = None
        self._status_seen = asyncio.Event()
        self._events: asyncio.Queue[HostEvents] = asyncio.Queue()
        self._requests: dict[int, asyncio.Future[HostResult | HostWatchResult]] = {}
        self._next_request = 1
        self._receiver: asyncio.Task[None] | None = None
        self._watchtower = _RelayedWatchtower(self)

    @property
    def chain_id(self) -> int:
        return self._require_status().chain_id

    @property
    def hub(self) -> Address:
        return self._require_status().hub

    @property
    def watchtower(self) -> Watchtower:
        """The host's watcher, reached through the host (see the module's docstring)."""
        return self._watchtower

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def _require_status(self) -> HostStatus:
        if self._status is None:
            raise LedgerUnavailable(f"no word from the host at {self._endpoint} yet")
        return self._status

    async def start(self) -> None:
        await self._transport.start()
        link = await self._transport.connect(self._endpoint)
        self._session = await open_session(link, self._key, self._codec, expected_peer=self._host)
        self._receiver = asyncio.ensure_future(self._receive(self._session))
        try:
            async with asyncio.timeout(self._timeout):
                await self._status_seen.wait()
        except TimeoutError:
            raise LedgerUnavailable(f"the host at {self._endpoint} sent no status") from None

    async def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiver
        if self._session is not None:
            await self._session.close()
        await self._transport.stop()
        for future in self._requests.values():
            if not future.done():
                future.set_exception(LedgerUnavailable("the host link stopped"))
                future.exception()

    async def _receive(self, session: PeerSession) -> None:
        try:
            while True:
                try:
                    message = await session.recv()
                except MalformedMessage as exc:
                    log.warning("host sent something unreadable: %s", exc)
                    continue
                if isinstance(message, HostStatus):
                    self._status = message
                    self._status_seen.set()
                elif isinstance(message, HostEvents):
                    self._events.put_nowait(message)
                elif isinstance(message, HostResult | HostWatchResult):
                    future = self._requests.pop(message.request_id, None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif isinstance(message, HostRefused):
                    log.warning("host refused: %s", message.reason)
        except (TransportError, AuthenticationFailed) as exc:
            log.warning("lost the host at %s: %s", self._endpoint, exc)
            for future in self._requests.values():
                if not future.done():
                    future.set_exception(LedgerUnavailable(f"lost the host: {exc}"))

    async def _send(
        self, message: HostHello | HostExecute | HostWatchRegister | HostWatchProof
    ) -> None:
        if self._session is None:
            raise LedgerUnavailable("the host link is not started")
        try:
            await send_on(self._session, message)
        except TransportError as exc:
            raise LedgerUnavailable(f"cannot reach the host: {exc}") from exc

    async def catch_up(self, from_block: int) -> tuple[list[ChainInput], int]:
        await self._send(HostHello(from_block))
        async with asyncio.timeout(self._timeout):
            history = await self._events.get()
        return list(history.inputs), history.head

    async def follow(self, from_block: int) -> AsyncIterator[ChainInput]:
        while True:
            batch = await self._events.get()
            for inp in batch.inputs:
                if inp.block_number >= from_block:
                    yield inp

    async def chain_time(self) -> int:
        return self._require_status().chain_time

    async def request(
        self,
        make: Callable[[int], HostExecute | HostWatchRegister | HostWatchProof],
    ) -> HostResult | HostWatchResult:
        """Send the request `make(request_id)` builds and wait for the host's answer."""
        request_id = self._next_request
        self._next_request += 1
        future: asyncio.Future[HostResult | HostWatchResult]
        future = asyncio.get_running_loop().create_future()
        self._requests[request_id] = future
        try:
            await self._send(make(request_id))
            async with asyncio.timeout(self._timeout):
                return await future
        finally:
            self._requests.pop(request_id, None)

    async def execute(self, tx: TxRequest) -> None:
        result = await self.request(lambda request_id: HostExecute(request_id, tx))
        if not isinstance(result, HostResult):
            raise LedgerUnavailable(f"the host answered a transaction with {result!r}")
        if not result.ok:
            raise TransactionReverted(result.reason)


class _RelayedWatchtower(Watchtower):
    """`Watchtower` over a `HostLink`: the host passes everything on to its watcher."""

    def __init__(self, link: HostLink) -> None:
        self._link = link

    async def identity(self) -> TowerIdentity:
        try:
            status = self._link._require_status()
        except LedgerUnavailable as exc:
            raise WatchUnavailable(str(exc)) from None
        if status.watcher is None:
            raise WatchUnavailable(f"the host at {self._link.endpoint} relays to no watcher")
        return TowerIdentity(status.watcher, status.chain_id, status.hub)

    async def register(self, registration: SignedRegistration) -> str:
        result = await self._ask(lambda rid: HostWatchRegister(rid, registration))
        return result.token

    async def update(self, proof: ProofUpdate) -> None:
        await self._ask(lambda rid: HostWatchProof(rid, proof))

    async def _ask(
        self, make: Callable[[int], HostWatchRegister | HostWatchProof]
    ) -> HostWatchResult:
        try:
            result = await self._link.request(make)
        except (LedgerUnavailable, TimeoutError) as exc:
            raise WatchUnavailable(f"cannot reach the watcher through the host: {exc}") from exc
        if not isinstance(result, HostWatchResult):
            raise WatchUnavailable(f"the host answered a watcher request with {result!r}")
        if result.error is not None:
            raise result.error.exception()
        return result
