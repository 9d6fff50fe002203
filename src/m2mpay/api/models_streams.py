"""The API's bodies for provenance streams (`routes_streams`): what a node holds of a
stream and what verifying it found. Bytes are 0x-hex, times epoch milliseconds; a
message's exact bytes are in `raw`, so that a reader verifies those, never these fields."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "AnchorCheckView",
    "StreamAnchorView",
    "StreamList",
    "StreamMessageList",
    "StreamMessageView",
    "StreamProblemView",
    "StreamSummary",
    "StreamVerification",
    "StreamView",
]

AccessName = Literal["public", "restricted", "subscribers"]


class StreamSummary(BaseModel):
    """A stream as listed: its root's fields and how far it is written and anchored."""

    stream_id: str
    author: str
    purpose: str
    access: AccessName
    created_ms: int
    links: list[str] = Field(description="The upstream streams this one resells from.")
    count: int = Field(description="Messages held (the head's index + 1).")
    head: str | None = Field(description="The hash of the last message, none before the first.")
    head_ms: int | None
    anchored_to: int | None = Field(
        description="The highest message index an anchored head covers (every message up "
        "to it is provable on chain); none before the first anchor."
    )
    session: str | None = Field(
        description="The metered session the stream records, when this node can read its "
        "first record (a public stream, or one this node writes)."
    )


class StreamList(BaseModel):
    streams: list[StreamSummary]


class StreamAnchorView(BaseModel):
    """A batch holding one of the stream's heads: submitted, and once mined its block."""

    batch: int
    head_index: int
    position: int
    count: int
    root: str
    tx_hash: str | None
    block_number: int | None
    anchored: bool


class StreamView(StreamSummary):
    root: str = Field(description="The root's exact bytes.")
    anchors: list[StreamAnchorView]
    file: str = Field(description="Where the stream's file is on this node (a path).")


class StreamMessageView(BaseModel):
    index: int
    hash: str
    prev: str
    timestamp_ms: int
    epoch: int
    kind: Literal["record", "keys", "unknown"]
    signer: str
    sealed: bool = Field(description="Its payload is encrypted (a record of a private stream).")
    payload_size: int
    raw: str = Field(description="The message's exact bytes: what is hashed and signed.")


class StreamMessageList(BaseModel):
    stream_id: str
    start: int
    messages: list[StreamMessageView]
    next: int | None = Field(description="The `start` of the next page; none at the end.")


class StreamProblemView(BaseModel):
    """The first problem: `position` in the stream (none: the root), the index the
    message claims, and one of `m2mpay.provenance.ProblemCode`'s codes."""

    code: str
    position: int | None
    index: int | None
    detail: str


class AnchorCheckView(BaseModel):
    """One anchored head's proof checked against the chain."""

    head_index: int | None
    ok: bool
    problem: str | None
    detail: str
    block_number: int | None


class StreamVerification(BaseModel):
    """The node's own check of a stream it holds: every message in order, up to the
    first problem. Sealed payloads are opened only if this node holds their key (it
    wrote the stream); otherwise everything but them is checked (`payloads_checked`)."""

    stream_id: str
    ok: bool
    verified: int
    count: int
    payloads_checked: bool
    problem: StreamProblemView | None
    anchors: list[AnchorCheckView]


class StreamReaderLink(BaseModel):
    """Where a person opens the stream in this node's web reader: the reader page with
    the stream (and a restricted stream's key) in the URL's fragment, which a browser
    never sends to a server."""

    stream_id: str
    url: str = Field(description="The reader page's URL; its key, if any, after the '#'.")
    keyed: bool = Field(description="The fragment holds the stream's key (a restricted stream).")
