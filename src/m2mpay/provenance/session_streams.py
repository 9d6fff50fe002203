"""One provenance stream per metered session a node sells, and how its buyer learns it.

`SessionStreams` keeps, for each sale, one restricted stream authored by the node key
(the key the payments go to, so the stream proves which payment address it is about):
first the `SessionRecord` and the `PriceRecord`, then `MeterRecord`s of the units
delivered (one per `observe` that saw the meter move: the caller observes at its
interval, not per tick), `PaymentRecord`s of what was paid, and the final
`ReceiptRecord`. What it is told comes from outside (the daemon hooks it to the session
manager): this package knows nothing of sessions but these records.

A sale's root is a function of the sale: the node key, the session's start, a nonce
derived from the node key and the session id (HKDF), and the upstream links. So after a
crash the same sale finds the same stream (`store.root` of the id it computes), whether
the crash came before, during or after its first records, and never starts a second.
Its key is the writer's, derived from the node key over the stream id: nothing secret
is kept at rest, and each sale's key is its own.

A writer error (a full disk, a store that failed) is logged and counted in `failures`
and never raised to the caller: a payment never waits on, or fails with, its record.

The buyer learns a stream over the peer link it buys on: it asks (`StreamAsk`, with an
X25519 key derived from its node key, `reader_key`), the seller answers (`StreamGiven`)
with the stream's root, where its file is, and its key wrapped for that X25519 key
(`stream_crypto.wrap_key`), followed by the upstream streams a reseller knows, their
keys wrapped again for the same buyer, so the final buyer can follow the links back to
the source. Peer links authenticate but do not encrypt, hence the wrap; `open_shares`
checks all of it before a buyer keeps any.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import M2MPayError, ProvenanceError
from m2mpay.plain import Blob, Bytes32, Text, plain_type
from m2mpay.provenance.stream_crypto import open_payload, stream_key, unwrap_key, wrap_key
from m2mpay.provenance.stream_format import (
    MAX_LINKS,
    AccessMode,
    StreamInvalid,
    StreamRoot,
    decode_root,
    make_root,
)
from m2mpay.provenance.stream_records import (
    KeyGrant,
    MeterRecord,
    PaymentRecord,
    PriceRecord,
    ReceiptRecord,
    SessionRecord,
    StreamRecord,
    decode_record,
)
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.provenance.streams import ProvenanceStream, StreamWriter

__all__ = [
    "SESSION_PURPOSE",
    "KnownStream",
    "SessionStreams",
    "SessionStreamsConfig",
    "StreamAsk",
    "StreamGiven",
    "StreamShare",
    "open_shares",
    "reader_key",
]

log = logging.getLogger("m2mpay.provenance.sessions")


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


SESSION_PURPOSE: Final = "m2mpay metered session"
MAX_URL: Final = 2_000
_URL: Final = re.compile(r"https?://[\x21-\x7e]+")
_READER_INFO: Final = b"m2mpay/provenance/reader-key/v1"
_NONCE_INFO: Final = b"m2mpay/provenance/session-nonce/v1"


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


def reader_key(node_key: PrivateKey) -> X25519PrivateKey:
    """The X25519 key a node reads the streams it buys with (derived, kept nowhere)."""
    return X25519PrivateKey.from_private_bytes(_hkdf(node_key.secret, b"", _READER_INFO))


# -- what travels over the peer link


@plain_type("prov.stream_ask")
@dataclass(frozen=True, slots=True)
class StreamAsk:
    """A buyer asks for its session's stream, its key to be wrapped for `reader`."""

    session_id: Bytes32
    reader: Bytes32  # an X25519 public key


@plain_type("prov.stream_share")
@dataclass(frozen=True, slots=True)
class StreamShare:
    """One stream: its root, its file's URL, its epoch-0 key wrapped for the asker."""

    root: Blob
    url: Text
    grant: KeyGrant


@plain_type("prov.stream_given")
@dataclass(frozen=True, slots=True)
class StreamGiven:
    """The session's stream first, then the upstream ones it links, nearest first."""

    session_id: Bytes32
    shares: tuple[StreamShare, ...]


@dataclass(frozen=True, slots=True)
class KnownStream:
    """A stream a buyer learned and opened: what a reader needs to fetch and verify it."""

    root: StreamRoot
    url: str
    key: bytes

    @property
    def stream_id(self) -> bytes:
        return self.root.stream_id


def open_shares(given: StreamGiven, seller: Address, reader: X25519PrivateKey) -> list[KnownStream]:
    """The streams `given` holds, each checked: the first is a session stream of
    `seller`'s, each next one is linked by the one before, every key opens for
    `reader`. `ProvenanceError("bad_share")` naming the first thing wrong."""
    if not 1 <= len(given.shares) <= MAX_LINKS + 1:
        raise ProvenanceError("bad_share", f"1 to {MAX_LINKS + 1} streams, not {len(given.shares)}")
    known: list[KnownStream] = []
    for number, share in enumerate(given.shares):
        try:
            root = decode_root(share.root)
        except StreamInvalid as exc:
            raise ProvenanceError("bad_share", f"stream {number}: {exc}") from None
        if root.access != AccessMode.RESTRICTED.value or root.purpose != SESSION_PURPOSE:
            raise ProvenanceError("bad_share", f"stream {number} is not a session's stream")
        if number == 0 and root.author != seller:
            raise ProvenanceError("bad_share", "the session's stream is not its seller's")
        if known and root.stream_id not in known[-1].root.links:
            raise ProvenanceError("bad_share", f"stream {number} is not linked by the one before")
        if len(share.grant.wraps) != 1:
            raise ProvenanceError("bad_share", f"stream {number}'s key is wrapped once, for us")
        if len(share.url) > MAX_URL or _URL.fullmatch(share.url) is None:
            raise ProvenanceError("bad_share", f"stream {number}'s URL is not http(s)")
        try:
            key = unwrap_key(share.grant, root.stream_id, 0, reader)
        except ValueError:
            key = None
        if key is None:
            raise ProvenanceError("bad_share", f"stream {number}'s key is not wrapped for us")
        known.append(KnownStream(root, share.url, key))
    return known


# -- the seller's side


@dataclass(frozen=True, slots=True)
class SessionStreamsConfig:
    meter_interval_s: float = 5.0  # how often the caller observes a sale's meter
    link_wait_s: float = 10.0  # how long a resale waits for its upstream stream


@dataclass(slots=True)
class _Sale:
    writer: StreamWriter
    record: SessionRecord
    units: int = 0  # the meter's total as last recorded
    paid: int = 0  # the sale's payments as recorded
    at_ms: int = 0  # when the last meter record was taken
    ended: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SessionStreams:
    """The streams of the sessions a node sells; see the module docstring."""

    def __init__(
        self, store: StreamStore, key: PrivateKey, now_ms: Callable[[], int] = _wall_ms
    ) -> None:
        self.store = store
        self.key = key
        self._now_ms = now_ms  # the messages' timestamps and the meter's intervals
        self.failures = 0  # writes that failed (logged, never raised)
        self._sales: dict[bytes, _Sale] = {}
        # Ended sales keep only their root (a buyer may ask late), not their writer.
        self._done: dict[bytes, StreamRoot] = {}
        self._ended: dict[bytes, asyncio.Event] = {}

    def _root(self, session_id: bytes) -> StreamRoot | None:
        sale = self._sales.get(session_id)
        return sale.writer.root if sale is not None else self._done.get(session_id)

    def stream_of(self, session_id: bytes) -> bytes | None:
        root = self._root(session_id)
        return None if root is None else root.stream_id

    async def wait_ended(self, session_id: bytes) -> None:
        """Until the sale's receipt is in its stream."""
        if session_id not in self._done:
            await self._ended.setdefault(session_id, asyncio.Event()).wait()

    def share(self, session_id: bytes, reader: X25519PublicKey, url: str) -> StreamShare | None:
        """The sale's stream for a buyer's `reader` key; None before the stream exists."""
        root = self._root(session_id)
        if root is None:
            return None
        key = stream_key(self.key, root.stream_id, 0)
        return StreamShare(root.raw, url, wrap_key(root.stream_id, 0, key, [reader]))

    def root_for(
        self, record: SessionRecord, started_ms: int, links: Sequence[bytes]
    ) -> StreamRoot:
        """The root of a sale's stream: the same for the same sale and links."""
        nonce = _hkdf(self.key.secret, record.session, _NONCE_INFO)
        return make_root(
            self.key, AccessMode.RESTRICTED, SESSION_PURPOSE, started_ms, nonce, tuple(links)
        )

    async def sold(
        self,
        record: SessionRecord,
        price: PriceRecord,
        started_ms: int,
        links: Sequence[bytes] = (),
        *,
        also: Sequence[Sequence[bytes]] = ((),),
    ) -> bytes | None:
        """Open the sale's stream (its first records written once), or find it again
        after a restart: under `links`, or any of `also` (a sale whose stream was made
        before its upstream was known). Its id; None if it could not be written."""
        known = self.stream_of(record.session)
        if known is not None:
            return known
        try:
            sale = await self._open(record, price, started_ms, links, also)
        except (M2MPayError, OSError, ValueError) as exc:
            self._failed(record.session, "open", exc)
            return None
        if sale.ended:
            self._done.setdefault(record.session, sale.writer.root)
        else:
            self._sales.setdefault(record.session, sale)
        return self.stream_of(record.session)

    async def _open(
        self,
        record: SessionRecord,
        price: PriceRecord,
        started_ms: int,
        links: Sequence[bytes],
        also: Sequence[Sequence[bytes]],
    ) -> _Sale:
        for candidate in (links, *also):
            root = self.root_for(record, started_ms, candidate)
            if await self.store.root(root.stream_id) is not None:
                writer = await StreamWriter.reopen(
                    self.store, self.key, root.stream_id, self._now_ms
                )
                return await self._resumed(writer, record, price)
        root = self.root_for(record, started_ms, links)
        await self.store.add_root(root)
        writer = StreamWriter(self.store, self.key, root, None, self._now_ms)
        await writer.append_many([record, price])
        return _Sale(writer, record, at_ms=started_ms)

    async def _resumed(
        self, writer: StreamWriter, record: SessionRecord, price: PriceRecord
    ) -> _Sale:
        """A sale's stream as the store holds it: where its meter and payments stood."""
        sale = _Sale(writer, record)
        stream = await ProvenanceStream.load(self.store, writer.stream_id)
        verified = stream.verify(writer.key(0))
        if not verified.ok:
            raise ProvenanceError(
                "bad_stream", f"our own stream does not verify: {verified.problem}"
            )
        records = verified.records
        if not records:  # the root was durable, its first records not
            await writer.append_many([record, price])
        for item in records:
            if isinstance(item, MeterRecord):
                sale.units = item.total
            elif isinstance(item, PaymentRecord):
                sale.paid += item.amount
            elif isinstance(item, ReceiptRecord):
                sale.ended = True
        if stream.messages:
            sale.at_ms = stream.messages[-1].timestamp_ms
        return sale

    async def complete(
        self, record: SessionRecord, started_ms: int, candidates: Sequence[Sequence[bytes]]
    ) -> bool:
        """Whether the sale's stream (under any of the `candidates` links) already ends
        with its receipt, read from its head alone: a restart need not load it."""
        for links in candidates:
            root = self.root_for(record, started_ms, links)
            stream_id = root.stream_id
            try:
                head = await self.store.head(stream_id)
            except (M2MPayError, OSError):
                return False
            if head is None:
                continue
            key = stream_key(self.key, stream_id, head.epoch)
            plaintext = open_payload(key, head.header, head.payload)
            try:
                ended = plaintext is not None and isinstance(
                    decode_record(plaintext), ReceiptRecord
                )
            except StreamInvalid:
                return False
            if ended:
                self._done.setdefault(record.session, root)
            return ended
        return False

    async def observe(self, session_id: bytes, units: int, paid: int, transferred: int) -> None:
        """The sale's meter (`units` delivered in all) and `paid` (in all, of which the
        channel's running total is `transferred`): records for what moved since."""
        sale = self._sales.get(session_id)
        if sale is None or sale.ended:
            return
        async with sale.lock:
            now_ms = self._now_ms()
            records = self._moved(sale, units, paid, transferred, now_ms)
            if records and await self._append(sale, records, "meter"):
                sale.units, sale.paid, sale.at_ms = (
                    max(units, sale.units),
                    max(paid, sale.paid),
                    now_ms,
                )

    def _moved(
        self, sale: _Sale, units: int, paid: int, transferred: int, now_ms: int
    ) -> list[StreamRecord]:
        records: list[StreamRecord] = []
        if units > sale.units:
            interval = max(0, now_ms - sale.at_ms)
            records.append(MeterRecord(sale.record.unit, units - sale.units, units, interval))
        if paid > sale.paid:
            record = sale.record
            records.append(
                PaymentRecord(record.channel, record.buyer, paid - sale.paid, transferred)
            )
        return records

    async def priced(self, session_id: bytes, price: PriceRecord) -> None:
        sale = self._sales.get(session_id)
        if sale is not None and not sale.ended:
            async with sale.lock:
                await self._append(sale, [price], "price")

    async def ended(
        self,
        session_id: bytes,
        receipt: ReceiptRecord,
        *,
        units: int,
        paid: int,
        transferred: int,
    ) -> None:
        """The sale stopped: its last readings and the receipt, once."""
        sale = self._sales.get(session_id)
        if sale is None or sale.ended:
            return
        async with sale.lock:
            records = [*self._moved(sale, units, paid, transferred, self._now_ms()), receipt]
            if await self._append(sale, records, "receipt"):
                sale.units, sale.paid, sale.ended = units, paid, True
                self._done[session_id] = sale.writer.root
                del self._sales[session_id]
                waited = self._ended.pop(session_id, None)
                if waited is not None:
                    waited.set()

    async def _append(self, sale: _Sale, records: Sequence[StreamRecord], what: str) -> bool:
        try:
            await sale.writer.append_many(records)
        except (M2MPayError, OSError) as exc:
            self._failed(sale.record.session, what, exc)
            return False
        return True

    def _failed(self, session_id: bytes, what: str, exc: BaseException) -> None:
        self.failures += 1
        log.warning("the stream of session 0x%s: %s not written: %s", session_id.hex(), what, exc)
