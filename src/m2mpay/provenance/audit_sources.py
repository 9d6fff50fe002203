"""Where an audit finds a value chain's streams, how it checks them, and the signed report.

`StreamLibrary` finds a stream by its id: in stream files given (v2 exports, with the
proofs of their anchored heads), in a `StreamStore` (with its `StreamAnchorer`'s
proofs), or through `fetch` (`fetch_from`: over HTTP, from the nodes that serve them).
It also knows the keys: those given per stream (a QR code's), and, for a stream the
issuing node wrote itself, the keys its node key derives.

`gather` follows the chain upstream from a stream along the roots' links, verifies every
stream (signatures, hash chain, payloads) and its anchor proofs: against the chain
(`verify_anchor`) when a ledger is given, else only each proof's own path to its root.
`audit_chain` does that, builds the report (`audit.build_report`), says in it what was
checked, and signs it with the node's key.
"""

from __future__ import annotations

import io
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from m2mpay.chain.hub import ChannelHub
from m2mpay.chain.ledger import Ledger
from m2mpay.crypto import PrivateKey
from m2mpay.errors import LedgerError, ProvenanceError
from m2mpay.provenance.anchor_proof import AnchorProof, verify_anchor
from m2mpay.provenance.audit import (
    MAX_CHAIN_STREAMS,
    AnchorStatus,
    AuditedStream,
    AuditRange,
    build_report,
)
from m2mpay.provenance.audit_report import AuditReport, Check, SignedReport, sign_report
from m2mpay.provenance.session_streams import KnownStream
from m2mpay.provenance.stream_anchor import StreamAnchorer, load_anchored
from m2mpay.provenance.stream_crypto import stream_key
from m2mpay.provenance.stream_file import StreamFile, read_stream_file
from m2mpay.provenance.stream_format import AccessMode, StreamMessage, StreamRoot, decode_root
from m2mpay.provenance.stream_records import SessionRecord
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.provenance.stream_verify import ReadKey, Verified, verify

__all__ = [
    "MAX_FETCH_BYTES",
    "Fetch",
    "StreamLibrary",
    "StreamSource",
    "audit_chain",
    "fetch_from",
    "fetch_stream_file",
    "gather",
    "parse_stream_file",
]


@dataclass(frozen=True, slots=True)
class StreamSource:
    """A stream as found, unverified: root, messages, the proofs of its anchored heads,
    and how many messages its source says it has (a file's header), if it says."""

    root: bytes
    messages: tuple[StreamMessage | bytes, ...]
    anchors: tuple[AnchorProof, ...] = ()
    count: int | None = None


Fetch = Callable[[bytes], Awaitable[StreamFile | None]]
MAX_FETCH_BYTES: Final = 256 * 1024 * 1024  # a stream file of a year of readings a second


def parse_stream_file(data: bytes, where: str) -> StreamFile:
    """The stream file in `data`; its problem names `where` it came from."""
    try:
        return read_stream_file(io.BytesIO(data))
    except ProvenanceError as exc:
        raise ProvenanceError(exc.code, f"{where}: {exc.message}") from None


async def fetch_stream_file(http: httpx.AsyncClient, url: str) -> StreamFile | None:
    """The stream file at `url` (None: 404), read with a bound on its size."""
    async with http.stream("GET", url) as answer:
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        body = bytearray()
        async for chunk in answer.aiter_bytes():
            body += chunk
            if len(body) > MAX_FETCH_BYTES:
                raise ProvenanceError("too_large", f"{url}: more than {MAX_FETCH_BYTES} bytes")
    return parse_stream_file(bytes(body), url)


def fetch_from(
    http: httpx.AsyncClient, bases: Sequence[str], told: Callable[[str], None] | None = None
) -> Fetch:
    """A `fetch` that looks for a stream's file under each of `bases` in turn (where a
    node's `reader_mount` serves them: ``<base>/0x<id>.jsonl``), e.g. the upstream
    seller's node; `told` hears where it was found."""

    async def fetch(stream_id: bytes) -> StreamFile | None:
        for base in bases:
            url = f"{base.rstrip('/')}/0x{stream_id.hex()}.jsonl"
            found = await fetch_stream_file(http, url)
            if found is not None:
                if told is not None:
                    told(f"following the link upstream to {url}")
                return found
        return None

    return fetch


def fetch_known(
    http: httpx.AsyncClient, known: Mapping[bytes, KnownStream], then: Fetch | None = None
) -> Fetch:
    """A `fetch` of the streams a buyer's sellers told it of (each at the URL its seller
    gave), any other stream asked of `then`."""

    async def fetch(stream_id: bytes) -> StreamFile | None:
        told = known.get(stream_id)
        if told is not None:
            return await fetch_stream_file(http, told.url)
        return None if then is None else await then(stream_id)

    return fetch


class StreamLibrary:
    """See the module docstring."""

    def __init__(
        self,
        *,
        store: StreamStore | None = None,
        anchorer: StreamAnchorer | None = None,
        files: Sequence[StreamFile] = (),
        fetch: Fetch | None = None,
        keys: Mapping[bytes, ReadKey] | None = None,
        author: PrivateKey | None = None,
    ) -> None:
        self.store = store
        self.anchorer = anchorer
        self.files = {f.stream_id: f for f in files}
        self.fetch = fetch
        self.keys = dict(keys or {})
        self.author = author

    async def find(self, stream_id: bytes) -> StreamSource | None:
        found = self.files.get(stream_id)
        if found is None and self.store is not None:
            try:
                stream, proofs = await load_anchored(self.store, self.anchorer, stream_id)
            except ProvenanceError as exc:
                if exc.code != "unknown_stream":
                    raise
            else:
                return StreamSource(stream.root.raw, stream.messages, tuple(proofs))
        if found is None and self.fetch is not None:
            found = await self.fetch(stream_id)
        if found is None:
            return None
        return StreamSource(found.root, found.messages, found.anchors, found.count)

    def key(self, root: StreamRoot, messages: Sequence[StreamMessage | bytes]) -> ReadKey | None:
        given = self.keys.get(root.stream_id)
        if given is not None or self.author is None or root.author != self.author.address:
            return given
        if root.access == AccessMode.PUBLIC:
            return None
        # Our own stream: its keys are derived from our key, one an epoch it used.
        epochs = {m.epoch for m in messages if isinstance(m, StreamMessage)}
        return {e: stream_key(self.author, root.stream_id, e) for e in epochs | {0}}


async def _anchor_status(
    proofs: Sequence[AnchorProof], verified: Verified, ledger: Ledger | None
) -> AnchorStatus:
    held = {m.message.index: m.message.hash for m in verified.messages}
    covered: int | None = None
    blocks: set[int] = set()
    failures: list[str] = []
    for proof in proofs:
        if ledger is not None:
            check = await verify_anchor(proof, ledger)
            message, problem = check.message, None if check.ok else check.detail
            code = "" if check.problem is None else f"{check.problem.value}: "
        else:
            message, problem = proof.check_offline()
            code = "forged_proof: "
        if problem is not None:
            failures.append(f"the anchor of batch {proof.batch} does not hold: {code}{problem}")
            continue
        if message is None or held.get(message.index) != message.hash:
            failures.append(f"the anchor of batch {proof.batch} proves a message not in the stream")
            continue
        covered = max(message.index, -1 if covered is None else covered)
        if proof.block_number is not None:
            blocks.add(proof.block_number)
    return AnchorStatus(covered, tuple(sorted(blocks)), tuple(failures), ledger is not None)


async def _channel_problem(verified: Verified, ledger: Ledger) -> str | None:
    """Why the session's channel is not on `ledger` at the hub its session names (None:
    it is there, open or settled). One read: the hub keeps a hash of each channel, so its
    parties and deposits are not read back, only that the hub knows the channel."""
    session = next((r for r in verified.records if isinstance(r, SessionRecord)), None)
    if session is None:
        return None  # not a sale: the report says so already
    if session.chain_id != ledger.chain_id:
        return f"the session is on chain {session.chain_id}, not on chain {ledger.chain_id}"
    if not await ledger.code(session.hub):
        return f"no channel hub at {session.hub} on chain {ledger.chain_id}"
    if await ChannelHub(ledger, session.hub).state_hash(session.channel) == bytes(32):
        return f"the hub at {session.hub} never held channel 0x{session.channel.hex()}"
    return None


async def gather(
    library: StreamLibrary, start: bytes, ledger: Ledger | None = None
) -> tuple[dict[bytes, AuditedStream], dict[bytes, str]]:
    """The chain's streams from `start` upstream, verified (see the module docstring),
    and why each stream that could not be had is missing."""
    streams: dict[bytes, AuditedStream] = {}
    missing: dict[bytes, str] = {}
    waiting = [start]
    while waiting and len(streams) + len(missing) < MAX_CHAIN_STREAMS:
        stream_id = waiting.pop()
        if stream_id in streams or stream_id in missing:
            continue
        source = await library.find(stream_id)
        if source is None:
            missing[stream_id] = "no store, file or address given holds it"
            continue
        try:
            root = decode_root(source.root)
        except ProvenanceError as exc:
            missing[stream_id] = f"its root does not decode ({exc.message})"
            continue
        key = library.key(root, source.messages)
        verified = verify(
            root, source.messages, key, stream_id=stream_id, count=source.count, payloads=True
        )
        try:
            anchors = await _anchor_status(source.anchors, verified, ledger)
            channel = None if ledger is None else await _channel_problem(verified, ledger)
        except LedgerError as exc:
            raise ProvenanceError("chain_unavailable", f"the chain did not answer: {exc}") from exc
        streams[stream_id] = AuditedStream(verified, anchors, channel)
        waiting.extend(root.links)
    return streams, missing


def _checks(streams: Mapping[bytes, AuditedStream], ledger: Ledger | None) -> list[Check]:
    proofs = sum(len(s.anchors.blocks) + len(s.anchors.failures) for s in streams.values())
    return [
        Check(
            "signatures and order of every record",
            True,
            f"{len(streams)} streams: each record signed by the seller's payment key and"
            " chained to the one before, none missing, none changed",
        ),
        Check(
            "anchors on chain",
            ledger is not None,
            (
                f"the proofs of each stream's anchored records checked against chain"
                f" {ledger.chain_id}'s blocks ({proofs} anchors)"
                if ledger is not None
                else "no chain was asked: each anchor proof's own path was checked, not"
                " whether the chain holds it"
            ),
        ),
        Check(
            "payment channels on chain",
            ledger is not None,
            (
                "each session's channel is known to the hub its session names (the hub keeps"
                " a hash of a channel, so its deposits are not read back): payments are"
                " taken from the records and receipts both parties signed"
                if ledger is not None
                else "no chain was asked: payments are taken from the records and receipts"
                " both parties signed"
            ),
        ),
    ]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def audit_chain(
    library: StreamLibrary,
    start: bytes,
    issuer: PrivateKey,
    *,
    span: AuditRange | None = None,
    ledger: Ledger | None = None,
    now_ms: Callable[[], int] = _now_ms,
) -> SignedReport:
    """The signed report of the chain ending in stream `start`."""
    streams, missing = await gather(library, start, ledger)
    report: AuditReport = build_report(
        streams,
        start,
        issuer=issuer.address,
        issued_ms=now_ms(),
        span=span,
        missing=missing,
        checks=_checks(streams, ledger),
    )
    return sign_report(report, issuer)
