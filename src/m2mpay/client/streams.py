"""Provenance streams a node holds: listed, shown, paged, their files and QR codes, and
the node's own verification of them.

A stream's file (`stream_file`) is bytes to verify, not an answer to trust: read it with
`m2mpay.provenance.read_stream_file` and verify it with the stream's key. The QR codes
(`stream_qr`, `session_qr_page`) hold a restricted stream's key: the node gives them to
its owner only (the token)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import httpx

from m2mpay.client.base import ApiBase, decode_items, path_id, read_answer, refusal_from
from m2mpay.client.codec import decode
from m2mpay.crypto import Address
from m2mpay.errors import NodeUnreachable

__all__ = [
    "AnchorCheckView",
    "StreamAnchorView",
    "StreamApi",
    "StreamMessageList",
    "StreamMessageView",
    "StreamProblemView",
    "StreamReaderLink",
    "StreamSummary",
    "StreamVerification",
    "StreamView",
]


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """A stream as listed: its root's fields, how far it is written and anchored."""

    stream_id: str
    author: Address
    purpose: str
    access: Literal["public", "restricted", "subscribers"]
    created_ms: int
    links: tuple[str, ...]  # the upstream streams it resells from
    count: int
    head: str | None
    head_ms: int | None
    anchored_to: int | None  # every message up to this index is provable on chain
    session: str | None  # the metered session it records, if the node reads that


@dataclass(frozen=True, slots=True)
class StreamAnchorView:
    batch: int
    head_index: int
    position: int
    count: int
    root: str
    tx_hash: str | None
    block_number: int | None
    anchored: bool


@dataclass(frozen=True, slots=True)
class StreamView(StreamSummary):
    root: str  # the root's exact bytes, 0x-hex
    anchors: tuple[StreamAnchorView, ...]
    file: str  # where its file is on the node (a path)


@dataclass(frozen=True, slots=True)
class StreamMessageView:
    index: int
    hash: str
    prev: str
    timestamp_ms: int
    epoch: int
    kind: Literal["record", "keys", "unknown"]
    signer: Address
    sealed: bool
    payload_size: int
    raw: str  # the message's exact bytes, 0x-hex: what verifies


@dataclass(frozen=True, slots=True)
class StreamMessageList:
    stream_id: str
    start: int
    messages: tuple[StreamMessageView, ...]
    next: int | None


@dataclass(frozen=True, slots=True)
class StreamProblemView:
    code: str  # a `m2mpay.provenance.ProblemCode`
    position: int | None  # None: the root
    index: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class AnchorCheckView:
    head_index: int | None
    ok: bool
    problem: str | None
    detail: str
    block_number: int | None


@dataclass(frozen=True, slots=True)
class StreamVerification:
    stream_id: str
    ok: bool
    verified: int
    count: int
    payloads_checked: bool
    problem: StreamProblemView | None
    anchors: tuple[AnchorCheckView, ...]


@dataclass(frozen=True, slots=True)
class StreamReaderLink:
    """The reader page's URL with the stream in its fragment (`keyed`: its key too)."""

    stream_id: str
    url: str = field(repr=False)  # a restricted stream's key is in it
    keyed: bool


class StreamApi(ApiBase):
    async def streams(
        self, *, author: Address | str | None = None, session: str | None = None, limit: int = 1000
    ) -> list[StreamSummary]:
        """The streams the node holds, oldest first (a read: the token unless the node
        has public reads); `session`: those of a session the node writes."""
        params: dict[str, str | int] = {"limit": limit}
        if author is not None:
            params["author"] = str(author)
        if session is not None:
            params["session"] = session
        return decode_items(
            StreamSummary, await self._call("GET", "/v1/streams", params=params), "streams"
        )

    async def stream(self, stream_id: str | bytes) -> StreamView:
        """One stream (public: its id is what its QR code gives)."""
        return decode(StreamView, await self._call("GET", f"/v1/streams/{path_id(stream_id)}"))

    async def stream_messages(
        self, stream_id: str | bytes, *, start: int = 0, limit: int = 100
    ) -> StreamMessageList:
        raw = await self._call(
            "GET",
            f"/v1/streams/{path_id(stream_id)}/messages",
            params={"start": start, "limit": limit},
        )
        return decode(StreamMessageList, raw)

    async def verify_stream(self, stream_id: str | bytes) -> StreamVerification:
        """The node's own verification of a stream it holds."""
        raw = await self._call("GET", f"/v1/streams/{path_id(stream_id)}/verify")
        return decode(StreamVerification, raw)

    async def stream_reader_link(self, stream_id: str | bytes) -> StreamReaderLink:
        """The URL that opens the stream in the node's web reader (a restricted stream's
        key in its fragment: the owner's token)."""
        raw = await self._call("GET", f"/v1/streams/{path_id(stream_id)}/reader")
        return decode(StreamReaderLink, raw)

    async def stream_file(self, stream_id: str | bytes) -> bytes:
        """The stream's file (JSON lines, with its anchor proofs): verify it yourself."""
        return await self._bytes(f"/v1/streams/{path_id(stream_id)}.jsonl")

    async def stream_qr(self, stream_id: str | bytes, kind: Literal["svg", "png"] = "svg") -> bytes:
        """The stream's QR code (a restricted stream's key in it: the owner's token)."""
        return await self._bytes(f"/v1/streams/{path_id(stream_id)}/qr.{kind}")

    async def session_qr_page(self, session_id: str | bytes) -> str:
        """The HTML page with the QR code of the newest stream of a session the node sells."""
        page = await self._bytes(f"/v1/sessions/{path_id(session_id)}/qr")
        return page.decode("utf-8", "replace")

    async def device_qr_page(self, device_id: str) -> str:
        """The page a device's display shows: the QR code of its running (else latest)
        sale's stream."""
        page = await self._bytes(f"/v1/devices/{device_id}/qr")
        return page.decode("utf-8", "replace")

    async def _bytes(self, path: str) -> bytes:
        """An answer that is not JSON (a file, an image, a page), as its bytes."""
        try:
            async with self._http.stream("GET", path, headers={"Accept": "*/*"}) as response:
                raw = await read_answer(response, f"GET {path}")
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"GET {self.url}{path}: {exc or type(exc).__name__}") from exc
        if not response.is_success:
            raise refusal_from(response.status_code, response.reason_phrase, raw)
        return raw
