"""The node's sessions written into provenance streams, and the streams it buys learned.

`StreamKeeper` hooks `provenance.SessionStreams` to the session manager from the
outside (the session package knows nothing of provenance): each sale's stream is
opened when the sale starts, its meter and payments observed every
`meter_interval_s`, its receipt written when it stops; every write runs in the
background, so a session never waits on its stream (see `SessionStreams`).

Over the peer links the keeper answers a buyer's `StreamAsk` for a sale with the
stream and its upstream ones (`StreamGiven`), and, for each purchase, asks its seller
and keeps the answer in its `BoughtStreams` (`streams-bought.json`). A resale's stream waits
for its purchase's upstream stream (up to `link_wait_s`) so that its root links it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError, ProvenanceError, StreamError
from m2mpay.lifecycle import cancel_all, run_in_background
from m2mpay.node import Node
from m2mpay.provenance.session_chain import BoughtStreams
from m2mpay.provenance.session_streams import (
    KnownStream,
    SessionStreams,
    SessionStreamsConfig,
    StreamAsk,
    StreamGiven,
    StreamShare,
    open_shares,
    reader_key,
)
from m2mpay.provenance.stream_crypto import public_bytes, wrap_key
from m2mpay.provenance.stream_records import (
    MeterUnit,
    PriceRecord,
    ReceiptRecord,
    SessionRecord,
    Totals,
)
from m2mpay.stream import SessionManager
from m2mpay.stream.info import SessionInfo
from m2mpay.stream.messages import FlowTotals
from m2mpay.stream.offer import ServiceKind
from m2mpay.stream.outputs import PriceAgreed, SessionEvent, SessionStarted, SessionStopped
from m2mpay.stream.state import SessionPhase

__all__ = ["StreamKeeper", "meter_unit"]

log = logging.getLogger("m2mpay.daemon.streams")

# The unit an offer names (a feed sold by the second is data counted in seconds), else
# its kind's.
_UNITS: Final = {unit.value: unit for unit in MeterUnit}
_KIND_UNITS: Final = {
    ServiceKind.ENERGY: MeterUnit.WH,
    ServiceKind.ACTUATION: MeterUnit.SECOND,
    ServiceKind.DATA: MeterUnit.MESSAGE,
}
_RUNNING: Final = frozenset({SessionPhase.ACTIVE, SessionPhase.STOPPING})
_OVER: Final = frozenset({SessionPhase.STOPPED})


class StreamKeeper:
    """See the module docstring. `url_of(stream_id)` is where the node serves a stream's
    file; `resold(offer_id)` whether an offer of ours is a resale."""

    def __init__(
        self,
        sessions: SessionManager,
        streams: SessionStreams,
        bought: BoughtStreams,
        *,
        url_of: Callable[[bytes], str],
        resold: Callable[[bytes], bool],
        config: SessionStreamsConfig | None = None,
    ) -> None:
        self.sessions = sessions
        self.node: Node = sessions.node
        self.streams = streams
        self.bought = bought
        self.config = config or SessionStreamsConfig()
        self._url_of = url_of
        self._resold = resold
        self._reader = reader_key(self.node.key)
        self._asks: dict[bytes, tuple[Address, X25519PublicKey]] = {}
        self._learned = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        # One sale's writes in order: its stream opened before its receipt is written.
        self._locks: dict[bytes, asyncio.Lock] = {}

    def start(self) -> None:
        """Hook on (the session manager runs): catch up on every sale, then observe."""
        self.sessions.add_listener(self._on_event)
        self.node.peers.route([StreamAsk, StreamGiven], self._on_message)
        self._spawn(self._run())

    async def stop(self) -> None:
        self.sessions.remove_listener(self._on_event)
        await cancel_all(self._tasks)

    def known(self, session_id: bytes) -> list[KnownStream]:
        """The streams a purchase's seller gave us, opened (empty: none yet)."""
        given = self.bought.get(session_id)
        if given is None:
            return []
        info = self.sessions.session(session_id)
        return open_shares(given, info.offer.seller, self._reader)

    def all_known(self) -> dict[bytes, KnownStream]:
        """Every stream our purchases' sellers gave us, opened, by stream id (a share
        that no longer opens, or of a session no longer held, is left out)."""
        found: dict[bytes, KnownStream] = {}
        for session_id in self.bought.sessions():
            try:
                found.update((k.stream_id, k) for k in self.known(session_id))
            except M2MPayError as exc:
                log.warning("the streams of purchase 0x%s: %s", session_id.hex(), exc)
        return found

    async def wait_known(self, session_id: bytes, timeout: float = 30.0) -> list[KnownStream]:
        """The streams of a purchase once its seller gave them (`TimeoutError` if not)."""
        async with asyncio.timeout(timeout), self._learned:
            await self._learned.wait_for(lambda: self.bought.get(session_id) is not None)
        return self.known(session_id)

    # -- the hooks

    def _on_event(self, event: SessionEvent, info: SessionInfo) -> None:
        if isinstance(event, SessionStarted):
            self._spawn(self._open(info) if info.we_sell else self._ask(info))
        elif isinstance(event, SessionStopped) and info.we_sell:
            self._spawn(self._end(info))
        elif isinstance(event, PriceAgreed) and info.we_sell:
            self._spawn(self.streams.priced(info.session_id, self._price(info, event.price)))

    def _on_message(self, peer: Address, message: Any) -> None:
        try:
            if isinstance(message, StreamAsk):
                self._asked(peer, message)
            elif isinstance(message, StreamGiven):
                self._given(peer, message)
        except (M2MPayError, ValueError) as exc:
            log.info("ignored %s from %s: %s", type(message).__name__, peer, exc)

    def _asked(self, peer: Address, ask: StreamAsk) -> None:
        info = self.sessions.session(ask.session_id)
        if not info.we_sell or info.peer != peer:
            raise StreamError("not_a_party", "only a sale's buyer learns its stream")
        self._asks[ask.session_id] = (peer, X25519PublicKey.from_public_bytes(ask.reader))
        self._answer(ask.session_id)

    def _given(self, peer: Address, given: StreamGiven) -> None:
        info = self.sessions.session(given.session_id)
        if info.we_sell or info.peer != peer:
            raise StreamError("not_a_party", "only a purchase's seller gives its stream")
        if self.bought.get(given.session_id) is not None:
            return  # the first answer stands: a seller cannot make us rewrite the book
        open_shares(given, peer, self._reader)  # checked before it is kept
        self.bought.add(given)
        self._spawn(self._notify())

    async def _notify(self) -> None:
        async with self._learned:
            self._learned.notify_all()

    def _answer(self, session_id: bytes) -> None:
        asked = self._asks.get(session_id)
        stream_id = self.streams.stream_of(session_id)
        if asked is None or stream_id is None:
            return  # answered once the stream exists
        peer, reader = self._asks.pop(session_id)
        try:
            share = self.streams.share(session_id, reader, self._url_of(stream_id))
            assert share is not None
            shares = [share, *self._upstream_shares(session_id, reader)]
        except ValueError as exc:  # a reader key no X25519 exchange accepts (low order)
            log.info("no stream for %s's reader key: %s", peer, exc)
            return
        self.node.peers.send_soon(peer, StreamGiven(session_id, tuple(shares)))

    def _upstream_shares(self, sale_id: bytes, reader: X25519PublicKey) -> list[StreamShare]:
        """The streams behind a resale, their keys wrapped again for `reader`."""
        return [
            StreamShare(k.root.raw, k.url, wrap_key(k.stream_id, 0, k.key, [reader]))
            for k in self._upstream(sale_id)
        ]

    def _upstream(self, sale_id: bytes) -> list[KnownStream]:
        for info in self.sessions.sessions():
            if info.supplies == sale_id and not info.we_sell:
                try:
                    return self.known(info.session_id)
                except ProvenanceError as exc:
                    log.warning("the upstream streams of 0x%s: %s", sale_id.hex(), exc)
        return []

    # -- the work, in the background

    async def _run(self) -> None:
        """Catch up on every sale (a stream whose head is its receipt costs one read),
        then observe the running ones at the interval."""
        for info in self.sessions.sessions():
            if not info.we_sell or info.phase not in _RUNNING | _OVER:
                continue
            if info.phase in _RUNNING:
                self._spawn(self._open(info))  # a resale may wait for its upstream
            elif not await self.streams.complete(
                self._record(info), info.started_ms, (self._links(info), ())
            ):
                await self._end(info)
        while True:
            await asyncio.sleep(self.config.meter_interval_s)
            await self._observe_all()

    async def _observe_all(self) -> None:
        for info in self.sessions.sessions():
            if info.phase not in _RUNNING:
                continue
            if info.we_sell:
                await self.streams.observe(info.session_id, *self._readings(info))
            elif self.bought.get(info.session_id) is None:
                await self._ask(info)  # not answered yet (a peer link lost, a restart)

    async def _ask(self, info: SessionInfo) -> None:
        ask = StreamAsk(info.session_id, public_bytes(self._reader.public_key()))
        await self.node.peers.send(info.peer, [ask])

    async def _open(self, info: SessionInfo) -> None:
        async with self._locks.setdefault(info.session_id, asyncio.Lock()):
            await self._open_now(info)

    async def _open_now(self, info: SessionInfo) -> None:
        if self.streams.stream_of(info.session_id) is not None:
            return
        if info.phase is SessionPhase.ACTIVE:  # an ended sale's upstream is what we know
            await self._wait_upstream(info)
        price = self._price(info, info.price)
        record = self._record(info)
        if await self.streams.sold(record, price, info.started_ms, self._links(info)):
            self._answer(info.session_id)

    def _record(self, info: SessionInfo) -> SessionRecord:
        chain = self.node.chain
        return SessionRecord(
            info.session_id,
            info.channel_id,
            chain.chain_id,
            chain.hub,
            self.node.address,
            info.peer,
            meter_unit(info),
        )

    def _links(self, info: SessionInfo) -> list[bytes]:
        """A resale's stream links the stream of the purchase behind it, once known."""
        if not self._resold(info.offer.offer_id):
            return []
        return [k.stream_id for k in self._upstream(info.session_id)][:1]

    async def _wait_upstream(self, info: SessionInfo) -> None:
        if not self._resold(info.offer.offer_id):
            return
        sale_id = info.session_id
        try:
            async with asyncio.timeout(self.config.link_wait_s), self._learned:
                await self._learned.wait_for(lambda: bool(self._upstream(sale_id)))
        except TimeoutError:
            log.warning("sale 0x%s: no upstream stream in time, unlinked", sale_id.hex())

    async def _end(self, info: SessionInfo) -> None:
        async with self._locks.setdefault(info.session_id, asyncio.Lock()):
            await self._open_now(info)
            await self._end_now(info)
        self._locks.pop(info.session_id, None)

    async def _end_now(self, info: SessionInfo) -> None:
        mine, theirs = info.receipt, info.peer_receipt
        if mine is None:
            return
        signatures = (mine.signature,) + (
            (theirs.signature,) if info.countersigned and theirs else ()
        )
        chain = self.node.chain
        receipt = ReceiptRecord(
            info.session_id,
            info.channel_id,
            chain.chain_id,
            chain.hub,
            _totals(mine.forward),
            _totals(mine.backward),
            mine.started_ms,
            mine.stopped_ms,
            signatures,
        )
        units, paid, transferred = self._readings(info)
        await self.streams.ended(
            info.session_id, receipt, units=units, paid=paid, transferred=transferred
        )

    def _readings(self, info: SessionInfo) -> tuple[int, int, int]:
        try:
            transferred = self.node.channel(info.channel_id).received_total
        except M2MPayError:
            transferred = 0
        return info.forward.units, info.forward.paid, transferred

    def _price(self, info: SessionInfo, price: int) -> PriceRecord:
        return PriceRecord(meter_unit(info), price, info.offer.asset)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        run_in_background(self._tasks, work)


def meter_unit(info: SessionInfo) -> MeterUnit:
    """What a sale's stream meters in."""
    return _UNITS.get(info.offer.unit) or _KIND_UNITS[info.offer.kind]


def _totals(flow: FlowTotals) -> Totals:
    return Totals(flow.units, flow.value, flow.paid)
