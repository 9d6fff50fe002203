"""`MemoryStore`: the in-memory `Store` for unit tests of the node.

What a real store keeps on disk lives in a `MemoryDisk`; hand the same disk to a new
`MemoryStore` to "restart". A commit yields to the event loop once, so flushes coalesce
as they do with a real disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from m2mpay.errors import StoreError
from m2mpay.store.base import Snapshot, Store, WalRecord

__all__ = ["MemoryDisk", "MemoryStore"]


@dataclass
class MemoryDisk:
    """The durable part of a `MemoryStore`: it outlives the store objects that use it."""

    records: dict[int, bytes] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    meta: dict[str, bytes] = field(default_factory=dict)
    in_use: bool = False


class MemoryStore(Store):
    """A `Store` whose durable state is a `MemoryDisk` (a fresh one if none is given)."""

    def __init__(self, disk: MemoryDisk | None = None) -> None:
        super().__init__("memory")
        self.disk = disk if disk is not None else MemoryDisk()
        self._attached = False

    def _require_disk(self) -> MemoryDisk:
        if not self._attached:
            raise StoreError("memory: the store is closed")
        return self.disk

    async def _connect(self) -> tuple[int, int]:
        if self.disk.in_use:
            raise StoreError("memory: the store is in use by another store object")
        self.disk.in_use = self._attached = True
        snapshot_seq = self.disk.snapshot.seq if self.disk.snapshot is not None else 0
        return max([snapshot_seq, *self.disk.records]), snapshot_seq

    async def _disconnect(self) -> None:
        if self._attached:
            self.disk.in_use = self._attached = False

    async def _write_batch(
        self, first_seq: int, records: Sequence[bytes], meta: dict[str, bytes | None]
    ) -> None:
        await asyncio.sleep(0)  # a disk takes time; let other appenders join the next batch
        disk = self._require_disk()
        if any(seq in disk.records for seq in range(first_seq, first_seq + len(records))):
            raise StoreError("memory: a record with this seq already exists")
        disk.records.update(zip(range(first_seq, first_seq + len(records)), records, strict=True))
        for key, value in meta.items():
            if value is None:
                disk.meta.pop(key, None)
            else:
                disk.meta[key] = value

    async def _write_snapshot(self, snapshot: Snapshot) -> None:
        disk = self._require_disk()
        disk.snapshot = snapshot
        for seq in [s for s in disk.records if s <= snapshot.seq]:
            del disk.records[seq]

    async def _read_all(self) -> tuple[Snapshot | None, Sequence[WalRecord], dict[str, bytes]]:
        disk = self._require_disk()
        after = disk.snapshot.seq if disk.snapshot is not None else 0
        records = [WalRecord(s, d) for s, d in sorted(disk.records.items()) if s > after]
        return disk.snapshot, records, dict(disk.meta)

    async def _read_meta(self, key: str) -> bytes | None:
        return self._require_disk().meta.get(key)
