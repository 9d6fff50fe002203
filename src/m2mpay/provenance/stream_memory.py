"""`MemoryStreamStore`: a `StreamStore` in memory, for tests and benchmarks; its
`MemoryStreamDisk` outlives it, so a new store on the same disk is a restart."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from m2mpay.crypto import Address
from m2mpay.errors import StoreError
from m2mpay.provenance.records import StreamBatch, StreamHead
from m2mpay.provenance.stream_format import StreamMessage, StreamRoot, decode_message
from m2mpay.provenance.stream_store import StreamStore

__all__ = ["MemoryStreamDisk", "MemoryStreamStore"]


@dataclass
class MemoryStreamDisk:
    """What a `MemoryStreamStore` keeps "on disk": hand it to a new store to restart."""

    roots: dict[bytes, bytes] = field(default_factory=dict)
    messages: dict[bytes, list[bytes]] = field(default_factory=dict)
    batches: list[StreamBatch] = field(default_factory=list)  # batch id n at n - 1
    in_use: bool = False


class MemoryStreamStore(StreamStore):
    """A `StreamStore` in memory (a `MemoryStreamDisk`), for tests and benchmarks."""

    def __init__(self, disk: MemoryStreamDisk | None = None, *, cached_heads: int = 10_000) -> None:
        super().__init__("memory", cached_heads=cached_heads)
        self.disk = disk if disk is not None else MemoryStreamDisk()

    async def _connect(self) -> None:
        if self.disk.in_use:
            raise StoreError("memory: the stream store is in use by another store object")
        self.disk.in_use = True

    async def _disconnect(self) -> None:
        self.disk.in_use = False

    async def _write(self, roots: Sequence[StreamRoot], messages: Sequence[StreamMessage]) -> None:
        await asyncio.sleep(0)  # a disk takes time: appends arriving meanwhile share a commit
        for root in roots:
            self.disk.roots.setdefault(root.stream_id, root.raw)
            self.disk.messages.setdefault(root.stream_id, [])
        for message in messages:
            stored = self.disk.messages[message.stream_id]
            if len(stored) != message.index:
                raise StoreError("memory: a message with this index already exists")
            stored.append(message.raw)

    async def _read_root(self, stream_id: bytes) -> bytes | None:
        return self.disk.roots.get(stream_id)

    async def _read_roots(self, author: Address | None, limit: int) -> list[bytes]:
        found = [
            data for data in self.disk.roots.values() if author is None or data[5:25] == author
        ]
        return found[:limit]

    async def _read_head(self, stream_id: bytes) -> bytes | None:
        stored = self.disk.messages.get(stream_id)
        return stored[-1] if stored else None

    async def _read_messages(self, stream_id: bytes, start: int, limit: int) -> list[bytes]:
        return self.disk.messages.get(stream_id, [])[start : start + limit]

    async def _read_unanchored_heads(self, limit: int) -> list[StreamHead]:
        recorded: dict[bytes, int] = {}
        for batch in self.disk.batches:
            for head in batch.heads:
                recorded[head.stream_id] = max(head.index, recorded.get(head.stream_id, -1))
        found = []
        for stream_id, stored in self.disk.messages.items():
            if stored and len(stored) - 1 > recorded.get(stream_id, -1):
                last = decode_message(stored[-1])
                found.append(StreamHead(stream_id, last.index, last.hash))
        return found[:limit]

    async def _write_batch(self, batch: StreamBatch) -> int:
        await asyncio.sleep(0)
        batch_id = len(self.disk.batches) + 1
        self.disk.batches.append(dataclasses.replace(batch, id=batch_id))
        return batch_id

    async def _write_batch_anchored(
        self, batch_id: int, tx_hash: bytes, block_number: int | None, gas_used: int | None
    ) -> None:
        at = batch_id - 1
        self.disk.batches[at] = dataclasses.replace(
            self.disk.batches[at], tx_hash=tx_hash, block_number=block_number, gas_used=gas_used
        )

    async def _read_batch(self, batch_id: int) -> StreamBatch | None:
        return self.disk.batches[batch_id - 1] if 0 < batch_id <= len(self.disk.batches) else None

    async def _read_unanchored_batches(self) -> list[StreamBatch]:
        return [b for b in self.disk.batches if not b.anchored]

    async def _read_anchors(self, stream_id: bytes, index: int) -> list[tuple[int, int]]:
        found = [
            (head.index, batch.id, at)
            for batch in self.disk.batches
            for at, head in enumerate(batch.heads)
            if head.stream_id == stream_id and head.index >= index
        ]
        return [(batch_id, at) for _, batch_id, at in sorted(found)]
