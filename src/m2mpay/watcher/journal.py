"""The watcher's durable log: state records in a `Store`, the chain cursor in its metadata.

Log, then act: every change to `WatcherState` is appended as a record at once, and
whatever depends on it (an HTTP answer saying a proof is stored, a challenge built
from a view) waits for `flush`, which concurrent callers share (group commit). The
cursor is metadata committed in the same transaction as the views read up to it, so
after a crash the watcher re-reads at most what it had not yet made durable; folding
chain events is idempotent, so reading a block twice is harmless.
"""

from __future__ import annotations

import logging
from typing import Final

import orjson

from m2mpay.chain.anchors import Anchors, parse_cursor
from m2mpay.errors import StoreError
from m2mpay.store import Store
from m2mpay.watcher.state import Record, WatcherState

__all__ = ["Journal"]

log = logging.getLogger("m2mpay.watcher")

_CURSOR_KEY: Final = "watcher.cursor"
_FORMAT_KEY: Final = "watcher.format"
_FORMAT: Final = b"1"


class Journal:
    """Appends records, commits them in groups, and snapshots the state now and then."""

    def __init__(self, store: Store, *, snapshot_every: int = 50_000) -> None:
        self._store = store
        self._snapshot_every = snapshot_every
        self._last_seq = 0
        self._since_snapshot = 0
        self.cursor = -1
        self.anchors = Anchors()  # block hashes stored with the cursor, vouching for it

    @property
    def location(self) -> str:
        return self._store.location

    async def open(self, start_block: int) -> WatcherState:
        """Open the store and rebuild the state it holds; a new store starts at `start_block`."""
        await self._store.open()
        recovered = await self._store.load()
        stored_format = recovered.meta.get(_FORMAT_KEY)
        if stored_format is not None and stored_format != _FORMAT:
            raise StoreError(
                f"{self._store.location}: watcher data of format {stored_format.decode()!r},"
                f" this watcher reads {_FORMAT.decode()!r}"
            )
        if recovered.snapshot is not None:
            state = WatcherState.from_snapshot(orjson.loads(recovered.snapshot.data))
        else:
            state = WatcherState()
        for record in recovered.records:
            state.apply_record(orjson.loads(record.data))
        self._last_seq = recovered.last_seq
        self._since_snapshot = len(recovered.records)
        cursor = recovered.meta.get(_CURSOR_KEY)
        if cursor is not None:
            self.cursor, anchors = parse_cursor(cursor)
            self.anchors = Anchors(anchors)
        else:
            self.cursor = start_block - 1
        self._store.put_meta(_FORMAT_KEY, _FORMAT)
        for closed in state.interrupted():
            self.append(closed)
        await self.flush()
        log.info(
            "watcher state from %s: %d channels, %d proofs, cursor at block %d",
            self._store.location,
            len(state.channels),
            state.proofs,
            self.cursor,
        )
        return state

    def append(self, record: Record) -> None:
        """Buffer one record; durable with the next `flush`."""
        self._last_seq = self._store.append(orjson.dumps(record))
        self._since_snapshot += 1

    def set_cursor(self, block: int) -> None:
        """Every block up to `block` has been read; durable with the next `flush`."""
        if block > self.cursor:
            self.cursor = block
            self._store.put_meta(_CURSOR_KEY, self.anchors.record(block))

    def rewind_cursor(self, block: int) -> None:
        """A reorganisation replaced the blocks after `block`: they are read again."""
        if block < self.cursor:
            self.cursor = block
            self._store.put_meta(_CURSOR_KEY, self.anchors.record(block))

    async def flush(self) -> None:
        await self._store.flush()

    async def maybe_snapshot(self, state: WatcherState) -> None:
        """Snapshot once enough records piled up, so a restart replays few of them."""
        if self._since_snapshot >= self._snapshot_every:
            await self.snapshot(state)

    async def snapshot(self, state: WatcherState) -> None:
        if self._since_snapshot == 0:
            return
        # No await between reading the seq and serializing: the snapshot is exactly
        # the state after record `seq`.
        seq, data = self._last_seq, orjson.dumps(state.snapshot())
        self._since_snapshot = 0
        await self._store.save_snapshot(seq, data)

    async def close(self, state: WatcherState | None) -> None:
        try:
            if state is not None:
                await self.snapshot(state)
        finally:
            await self._store.close()
