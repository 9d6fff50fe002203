"""What the node knows of the provenance streams it holds, as the API shows them.

A node holds streams it writes (their author is its key, so it derives their keys) and
streams it imported or keeps for others (it reads none of their sealed payloads). It
never needs a key from a client: a restricted stream's key leaves the node only in the
QR code served to its owner (`routes_stream_qr`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from m2mpay.api.errors import ApiError, provided
from m2mpay.api.gateway import Gateway
from m2mpay.api.models_streams import (
    StreamAnchorView,
    StreamMessageView,
    StreamSummary,
    StreamView,
)
from m2mpay.api.views import hex32
from m2mpay.provenance.records import StreamBatch
from m2mpay.provenance.stream_crypto import open_payload, stream_key
from m2mpay.provenance.stream_format import (
    AccessMode,
    MessageKind,
    StreamInvalid,
    StreamMessage,
    StreamRoot,
)
from m2mpay.provenance.stream_records import SessionRecord, decode_record
from m2mpay.provenance.stream_store import MAX_READ, StreamStore

__all__ = ["StreamDesk", "kept_streams", "message_view", "stream_file_path"]

_ACCESS: Final = {
    AccessMode.PUBLIC: "public",
    AccessMode.RESTRICTED: "restricted",
    AccessMode.SUBSCRIBERS: "subscribers",
}
_KINDS: Final[dict[int, Literal["record", "keys"]]] = {
    MessageKind.RECORD: "record",
    MessageKind.KEYS: "keys",
}
_FIRST_RECORDS: Final = 2  # a stream of subscribers starts with its keys, then the record
_CACHED_SESSIONS: Final = 10_000


def stream_file_path(stream_id: bytes) -> str:
    """Where the node serves a stream's file (version 2, with its anchor proofs)."""
    return f"/v1/streams/{hex32(stream_id)}.jsonl"


def message_view(message: StreamMessage, root: StreamRoot) -> StreamMessageView:
    sealed = message.kind == MessageKind.RECORD and root.mode is not AccessMode.PUBLIC
    return StreamMessageView(
        index=message.index,
        hash=hex32(message.hash),
        prev=hex32(message.prev),
        timestamp_ms=message.timestamp_ms,
        epoch=message.epoch,
        kind=_KINDS.get(message.kind, "unknown"),
        signer=message.signer.checksum,
        sealed=sealed,
        payload_size=len(message.payload),
        raw="0x" + message.raw.hex(),
    )


def _anchor_view(batch: StreamBatch, at: int) -> StreamAnchorView:
    return StreamAnchorView(
        batch=batch.id,
        head_index=batch.heads[at].index,
        position=at,
        count=batch.count,
        root=hex32(batch.root),
        tx_hash=None if batch.tx_hash is None else hex32(batch.tx_hash),
        block_number=batch.block_number,
        anchored=batch.anchored,
    )


def kept_streams(store: StreamStore | None) -> StreamStore:
    """The store of the node's provenance streams; 409 `no_streams` on a node without."""
    return provided(store, "no_streams", "this node keeps no provenance streams")


class StreamDesk:
    """The node's streams as the API reads them; 409 if the node keeps none."""

    def __init__(self, gw: Gateway) -> None:
        self._gw = gw
        # A stream's first record never changes: which session it names is read once.
        self._sessions: dict[bytes, bytes | None] = {}

    @property
    def store(self) -> StreamStore:
        return kept_streams(self._gw.streams)

    async def root(self, stream_id: bytes) -> StreamRoot:
        root = await self.store.root(stream_id)
        if root is None:
            raise ApiError(404, "unknown_stream", f"no stream {hex32(stream_id)}")
        return root

    def key(self, root: StreamRoot, epoch: int = 0) -> bytes | None:
        """The key of `root`'s stream at `epoch` if this node wrote it and it has one."""
        if root.mode is AccessMode.PUBLIC or root.author != self._gw.node.address:
            return None
        return stream_key(self._gw.node.key, root.stream_id, epoch)

    def keys(self, root: StreamRoot, head: StreamMessage | None) -> Mapping[int, bytes] | None:
        """Every epoch's key up to the head's, if this node wrote the stream."""
        if self.key(root) is None:
            return None
        last = 0 if head is None else head.epoch
        return {epoch: k for epoch in range(last + 1) if (k := self.key(root, epoch))}

    async def session_of(self, root: StreamRoot) -> bytes | None:
        """The session the stream's first record names, if the node can read it."""
        stream_id = root.stream_id
        if stream_id in self._sessions:
            return self._sessions[stream_id]
        session = None
        for message in await self.store.messages(stream_id, 0, _FIRST_RECORDS):
            if message.kind != MessageKind.RECORD:
                continue
            payload: bytes | None = message.payload
            if root.mode is not AccessMode.PUBLIC:
                key = self.key(root, message.epoch)
                sealed = message.payload
                payload = None if key is None else open_payload(key, message.header, sealed)
            try:
                record = None if payload is None else decode_record(payload)
            except StreamInvalid:
                record = None
            session = record.session if isinstance(record, SessionRecord) else None
            break
        else:
            return None  # no record yet: ask again later
        if len(self._sessions) >= _CACHED_SESSIONS:
            self._sessions.clear()
        self._sessions[stream_id] = session
        return session

    async def summary(self, root: StreamRoot) -> StreamSummary:
        return await self._view(root, full=False)

    async def view(self, root: StreamRoot) -> StreamView:
        view = await self._view(root, full=True)
        assert isinstance(view, StreamView)
        return view

    async def _view(self, root: StreamRoot, *, full: bool) -> StreamSummary:
        store = self.store
        head = await store.head(root.stream_id)
        anchors = await store.anchors(root.stream_id)
        anchored = [batch.heads[at].index for batch, at in anchors if batch.anchored]
        session = await self.session_of(root)
        fields = {
            "stream_id": hex32(root.stream_id),
            "author": root.author.checksum,
            "purpose": root.purpose,
            "access": _ACCESS.get(root.mode, "public"),
            "created_ms": root.created_ms,
            "links": [hex32(link) for link in root.links],
            "count": 0 if head is None else head.index + 1,
            "head": None if head is None else hex32(head.hash),
            "head_ms": None if head is None else head.timestamp_ms,
            "anchored_to": max(anchored, default=None),
            "session": None if session is None else hex32(session),
        }
        if not full:
            return StreamSummary(**fields)  # type: ignore[arg-type]
        return StreamView(
            **fields,  # type: ignore[arg-type]
            root="0x" + root.raw.hex(),
            anchors=[_anchor_view(batch, at) for batch, at in anchors],
            file=stream_file_path(root.stream_id),
        )

    async def of_session(self, session_id: bytes) -> StreamRoot:
        """The newest stream this node wrote for `session_id`; 404 if none."""
        told = None if self._gw.session_stream is None else self._gw.session_stream(session_id)
        if told is not None:  # the writer knows it: no scan of the first records
            found = await self.store.root(told)
            if found is not None:
                return found
        mine = await self.store.roots(self._gw.node.address, MAX_READ)
        for root in reversed(mine):
            if await self.session_of(root) == session_id:
                return root
        raise ApiError(404, "unknown_stream", f"no stream of session {hex32(session_id)}")
