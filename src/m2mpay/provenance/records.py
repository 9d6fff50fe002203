"""What provenance is made of: a device's telemetry records and a stream's anchored
heads, the Merkle leaves that bind each to its source (one domain each, so a leaf of one
kind never proves one of the other), the batches that anchor them on chain, and
`TelemetryStore`, what a store must keep for telemetry (the device bus's store does;
`StreamStore` keeps stream batches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from m2mpay.crypto import Address, keccak256

__all__ = [
    "STREAM_LEAF_DOMAIN",
    "TELEMETRY_LEAF_DOMAIN",
    "BatchRecord",
    "NewBatch",
    "RecordedBatch",
    "StreamBatch",
    "StreamHead",
    "TelemetryRecord",
    "TelemetryStore",
    "canonical_json",
    "stream_leaf",
    "telemetry_leaf",
]

TELEMETRY_LEAF_DOMAIN = b"m2mpay/v1/telemetry"
STREAM_LEAF_DOMAIN = b"m2mpay/v1/stream-head"


def telemetry_leaf(device: Address, seq: int, at_ms: int, data: bytes) -> bytes:
    """The Merkle leaf of one record: what the device said, bound to the device."""
    return keccak256(
        TELEMETRY_LEAF_DOMAIN
        + bytes(device)
        + seq.to_bytes(8, "big")
        + at_ms.to_bytes(8, "big")
        + keccak256(data)
    )


def stream_leaf(stream_id: bytes, index: int, message_hash: bytes) -> bytes:
    """The Merkle leaf of a stream head: message `index` of the stream, whose hash (and
    so, by the hash chain, every message before it) is `message_hash`."""
    return keccak256(STREAM_LEAF_DOMAIN + stream_id + index.to_bytes(8, "big") + message_hash)


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces (what telemetry hashes)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class TelemetryRecord:
    device: Address
    seq: int
    at_ms: int
    received_ms: int
    data: bytes  # canonical JSON
    batch: int | None = None

    @property
    def leaf(self) -> bytes:
        return telemetry_leaf(self.device, self.seq, self.at_ms, self.data)


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A batch about to be anchored: its records (seqs, in order) and their root."""

    device: Address
    root: bytes
    seqs: tuple[int, ...]
    created_ms: int
    from_block: int  # the chain's height before submitting: where to look for it

    def recorded(self, batch_id: int) -> BatchRecord:
        """The batch as a store keeps it under `batch_id`, not yet anchored."""
        return BatchRecord(
            id=batch_id,
            root=self.root,
            created_ms=self.created_ms,
            from_block=self.from_block,
            device=self.device,
            first_seq=self.seqs[0],
            last_seq=self.seqs[-1],
            count=len(self.seqs),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedBatch:
    """What a store keeps of an anchor batch of any kind: recorded (its id, its root)
    before it is submitted, then marked with where the chain holds it. Its fields are
    named when it is made: each kind adds its own."""

    id: int
    root: bytes
    created_ms: int
    from_block: int  # the chain's height before submitting: where to look for it
    tx_hash: bytes | None = None
    block_number: int | None = None
    gas_used: int | None = None

    @property
    def anchored(self) -> bool:
        return self.block_number is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRecord(RecordedBatch):
    """A batch of one device's telemetry records, by their seqs."""

    device: Address
    first_seq: int
    last_seq: int
    count: int


class TelemetryStore(Protocol):
    """The durable memory the batcher needs; every write is durable when it returns."""

    async def add_telemetry(self, record: TelemetryRecord) -> bool:
        """Store a record; False (and nothing stored) if its seq is not above the last."""
        ...

    async def last_telemetry_seq(self, device: Address) -> int: ...

    async def telemetry(
        self, device: Address, *, since_ms: int = 0, after_seq: int = 0, limit: int = 1000
    ) -> list[TelemetryRecord]:
        """A device's records measured at or after `since_ms`, after `after_seq`, by seq."""
        ...

    async def unbatched(self, limit: int) -> list[TelemetryRecord]:
        """Records in no batch yet, by device and seq."""
        ...

    async def create_batches(self, batches: Sequence[NewBatch]) -> list[BatchRecord]:
        """Record batches and put their records in them, in one transaction."""
        ...

    async def mark_anchored(
        self, batch_ids: Sequence[int], tx_hash: bytes, block_number: int, gas_used: int
    ) -> None: ...

    async def batch(self, batch_id: int) -> BatchRecord | None: ...

    async def batch_records(self, batch_id: int) -> list[TelemetryRecord]:
        """A batch's records, in leaf order."""
        ...

    async def unanchored_batches(self) -> list[BatchRecord]:
        """Batches recorded but not yet seen on chain, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class StreamHead:
    """A stream's message as a leaf of an anchor batch: where it is and its hash."""

    stream_id: bytes
    index: int
    hash: bytes

    @property
    def leaf(self) -> bytes:
        return stream_leaf(self.stream_id, self.index, self.hash)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamBatch(RecordedBatch):
    """A batch of stream heads as a stream store keeps it: its leaves in order."""

    heads: tuple[StreamHead, ...]

    @property
    def count(self) -> int:
        return len(self.heads)
