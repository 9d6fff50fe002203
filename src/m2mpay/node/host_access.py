"""The device side of the device/host split: the chain (and a watcher) through the host.

See `m2mpay.node.host` for the whole picture. The session to the host comes back by
itself: once it is lost, the link dials again with capped exponential backoff, asks
the new session for the history since where its feed stopped, and `follow` goes on
with no input lost and none repeated (`m2mpay.node.host_feed`).

Meanwhile requests fail at once with `LedgerUnavailable` (`WatchUnavailable` for the
watcher) rather than wait for the host: the node turns a failed transaction into a
machine input and the watcher feed retries with its own backoff, so each caller
keeps its own retry policy instead of waiting blind on a host that may be gone for
good. A request the lost session carried fails too and is never sent again: the
host may already have carried it out, and a resend could pay twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

from m2mpay.channel.outputs import TxRequest
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import (
    LedgerUnavailable,
    MalformedMessage,
    ProtocolError,
    TransactionReverted,
    TransportError,
)
from m2mpay.node.chain_access import ChainAccess, ChainInput
from m2mpay.node.host_feed import HostFeed
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
from m2mpay.wire import UNKNOWN_CHAIN, PeerLink, Transport, codec_by_name, open_peer_link

__all__ = ["HostAccess"]

log = logging.getLogger("m2mpay.host")

_BACKOFF_S: Final = (0.1, 5.0)  # first pause before dialling again, and the longest


class HostAccess(ChainAccess):
    """The chain as a device sees it: through one session to its host, redialled when lost."""

    def __init__(
        self,
        key: PrivateKey,
        transport: Transport,
        endpoint: str,
        *,
        host: Address | None = None,
        codec: str = "cbor",
        request_timeout: float = 120.0,
        reconnect_backoff: tuple[float, float] = _BACKOFF_S,
    ) -> None:
        self._key = key
        self._transport = transport
        self._endpoint = endpoint
        self._host = host
        self._codec = codec_by_name(codec)
        self._timeout = request_timeout
        self._backoff = reconnect_backoff
        self._session: PeerLink | None = None  # None while reconnecting
        self._status: HostStatus | None = None  # the newest; kept (stale) while away
        self._said_hello = False  # on the current session
        self._reply_due = False  # the next HostEvents answers that hello
        self._feed = HostFeed()
        self._requests: dict[int, asyncio.Future[HostResult | HostWatchResult]] = {}
        self._next_request = 1
        self._runner: asyncio.Task[None] | None = None
        self._stopped = False
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

    @property
    def connected(self) -> bool:
        """Whether a session to the host is up (False while reconnecting)."""
        return self._session is not None

    @property
    def genesis_hash(self) -> bytes:
        return self._require_status().genesis or UNKNOWN_CHAIN

    def _require_status(self) -> HostStatus:
        if self._status is None:
            raise LedgerUnavailable(f"no word from the host at {self._endpoint} yet")
        return self._status

    async def start(self) -> None:
        await self._transport.start()
        session = await self._open()
        self._runner = asyncio.ensure_future(self._run(session))

    async def stop(self) -> None:
        self._stopped = True
        if self._runner is not None:
            self._runner.cancel()
            # wait(), not `await`: a cancellation of stop() itself must not be swallowed.
            await asyncio.wait({self._runner})
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._transport.stop()
        self._fail_requests("the access through the host stopped")
        self._feed.give_up_history("the access through the host stopped")

    async def _open(self) -> PeerLink:
        """Dial the host, check who and which chain it is, and make it the current session."""
        link = await self._transport.connect(self._endpoint)
        session = await open_peer_link(link, self._key, self._codec, expected_peer=self._host)
        try:
            async with asyncio.timeout(self._timeout):
                status = await session.recv()  # a host begins with its status
        except TimeoutError:
            await session.close()
            raise LedgerUnavailable(f"the host at {self._endpoint} sent no status") from None
        except BaseException:
            await session.close()
            raise
        known = self._status
        if not isinstance(status, HostStatus):
            await session.close()
            raise MalformedMessage(f"the host began with {type(status).__name__}, not its status")
        if known is not None and (status.chain_id, status.hub, status.genesis) != (
            known.chain_id,
            known.hub,
            known.genesis,
        ):
            await session.close()
            # Our channels are bound to one chain and hub: another's events would be nonsense.
            raise LedgerUnavailable(
                f"the host at {self._endpoint} now serves hub {status.hub} on chain"
                f" {status.chain_id}, not hub {known.hub} on chain {known.chain_id}"
            )
        self._host = session.peer  # every later session must reach this same host
        self._status = status
        self._session, self._said_hello, self._reply_due = session, False, False
        return session

    async def _run(self, session: PeerLink) -> None:
        """Serve the session, and a new one each time it is lost, until stopped."""
        while True:
            reason = await self._serve(session)
            self._session = None
            log.warning("lost the host at %s: %s; reconnecting", self._endpoint, reason)
            # The host may have acted on what it got: a resend could pay twice.
            self._fail_requests(f"lost the host before it answered: {reason}")
            await session.close()
            session = await self._reconnect()

    async def _reconnect(self) -> PeerLink:
        delay, longest = self._backoff
        failed: type[Exception] | None = None
        while True:
            await asyncio.sleep(delay)
            try:
                session = await self._open()
            except (TransportError, ProtocolError, LedgerUnavailable) as exc:
                if type(exc) is not failed:  # one line per kind of failure, not per attempt
                    log.info("the host at %s is not back: %s; retrying", self._endpoint, exc)
                    failed = type(exc)
                delay = min(delay * 2, longest)
                continue
            log.info("reconnected to the host at %s", self._endpoint)
            return session

    async def _serve(self, session: PeerLink) -> str:
        """Receive until the session is lost; returns why."""
        try:
            await self._say_hello()
            while True:
                try:
                    message = await session.recv()
                except MalformedMessage as exc:
                    log.warning("host sent something unreadable: %s", exc)
                    continue
                if isinstance(message, HostStatus):
                    self._status = message
                elif isinstance(message, HostEvents):
                    # The host sends nothing live before it answers a session's hello.
                    reply, self._reply_due = self._reply_due, False
                    self._feed.received(message, reply=reply)
                elif isinstance(message, HostResult | HostWatchResult):
                    future = self._requests.pop(message.request_id, None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif isinstance(message, HostRefused):
                    log.warning("host refused: %s", message.reason)
        except (TransportError, ProtocolError) as exc:
            return str(exc)

    async def _say_hello(self) -> None:
        """Ask the current session, once, for the history the feed lacks (if it follows)."""
        if self._session is None or self._said_hello:
            return
        start = self._feed.hello_from()
        if start is not None:
            self._said_hello = self._reply_due = True
            await send_on(self._session, HostHello(start))

    def _fail_requests(self, reason: str) -> None:
        for future in self._requests.values():
            if not future.done():
                future.set_exception(LedgerUnavailable(reason))
                future.exception()  # the caller may be gone; that is not an error
        self._requests.clear()

    async def catch_up(self, from_block: int) -> tuple[list[ChainInput], int]:
        history = self._feed.ask_history(from_block)
        with contextlib.suppress(TransportError):  # then the next session asks
            await self._say_hello()
        try:
            async with asyncio.timeout(self._timeout):
                events = await history
        except TimeoutError:
            self._feed.give_up_history("catch_up gave up")
            raise LedgerUnavailable(f"no history from the host at {self._endpoint}") from None
        return list(events.inputs), events.head

    async def follow(self, from_block: int) -> AsyncIterator[ChainInput]:
        while True:
            inp = await self._feed.next()
            if inp.block_number >= from_block:
                yield inp

    async def chain_time(self) -> int:
        # While away, the last clock the host sent: behind the chain, so a deadline
        # never looks passed too early.
        return self._require_status().chain_time

    async def request(
        self,
        make: Callable[[int], HostExecute | HostWatchRegister | HostWatchProof],
    ) -> HostResult | HostWatchResult:
        """Send the request `make(request_id)` builds and wait for the host's answer."""
        session = self._session
        if session is None:
            if self._stopped or self._runner is None:
                raise LedgerUnavailable("the access through the host is not running")
            raise LedgerUnavailable(f"no session with the host at {self._endpoint}: reconnecting")
        request_id = self._next_request
        self._next_request += 1
        future: asyncio.Future[HostResult | HostWatchResult]
        future = asyncio.get_running_loop().create_future()
        self._requests[request_id] = future  # before sending: a loss now fails it
        try:
            try:
                await send_on(session, make(request_id))
            except TransportError as exc:
                raise LedgerUnavailable(f"cannot reach the host: {exc}") from exc
            try:
                async with asyncio.timeout(self._timeout):
                    return await future
            except TimeoutError:
                # A LedgerError, as the node expects of any ChainAccess: it turns it
                # into a failed transaction instead of losing the submitting task.
                raise LedgerUnavailable(
                    f"the host at {self._endpoint} did not answer in {self._timeout:g} s"
                ) from None
        finally:
            self._requests.pop(request_id, None)

    async def execute(self, tx: TxRequest) -> None:
        result = await self.request(lambda request_id: HostExecute(request_id, tx))
        if not isinstance(result, HostResult):
            raise LedgerUnavailable(f"the host answered a transaction with {result!r}")
        if not result.ok:
            raise TransactionReverted(result.reason)


class _RelayedWatchtower(Watchtower):
    """`Watchtower` over a `HostAccess`: the host passes everything on to its watcher."""

    def __init__(self, link: HostAccess) -> None:
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
