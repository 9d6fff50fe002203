"""The `Store` boundary: a write-ahead log of opaque records, one snapshot, a little metadata.

A node follows "log, then act": every input and the outputs it produced are appended here
and made durable before any output is performed. `append` only buffers in memory so the
hot path never waits on a disk; `flush` makes everything appended so far durable in one
transaction (group commit), and callers that flush while a commit is in flight share the
next one instead of each paying for their own.

The store never looks inside a record: serialization is the node's business. Sequence
numbers start at 1 and stay consecutive across restarts, so a node can tell from a seq
alone whether an input was already logged.

A commit that fails leaves the store unusable: the node's in-memory state has moved past
what is durable, and the only safe way back is to reopen and replay (the lesson of
PostgreSQL's "fsyncgate": never retry a write whose fate is unknown).
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from m2mpay.errors import StoreError
from m2mpay.lifecycle import Openable

__all__ = ["Recovered", "Snapshot", "Store", "WalRecord"]


@dataclass(frozen=True, slots=True)
class WalRecord:
    """One durable record of the write-ahead log."""

    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A node's whole state after applying every record up to and including `seq`."""

    seq: int
    data: bytes


@dataclass(frozen=True)
class Recovered:
    """What a restarting node replays: the newest snapshot, then every record after it."""

    snapshot: Snapshot | None
    records: list[WalRecord]
    meta: dict[str, bytes] = field(default_factory=dict)

    @property
    def last_seq(self) -> int:
        """The highest seq the recovered state includes (0 for an empty store)."""
        if self.records:
            return self.records[-1].seq
        return self.snapshot.seq if self.snapshot is not None else 0


class _State(Enum):
    NEW = "new"
    OPEN = "open"
    FAILED = "failed"
    CLOSED = "closed"


_MAX_META_KEY: Final = 1024


class Store(Openable):
    """A durable write-ahead log with snapshots and a small key-value side table.

    Use it as an async context manager, or call `open` and `close`. A store object is
    opened once; to "restart", make a new one on the same location. Only one open store
    may write a location at a time: a second one is refused with `StoreError`.

    Implementations provide the `_connect`, `_disconnect`, `_write_batch`,
    `_write_snapshot`, `_read_all` and `_read_meta` hooks; this class owns buffering,
    sequence numbers, commit coalescing and the checks every backend shares. The hooks are
    never called concurrently with each other.
    """

    def __init__(self, location: str) -> None:
        self._location = location
        self._state = _State.NEW
        self._failure = ""
        self._pending: list[bytes] = []  # records after the batch in flight, if any
        self._pending_meta: dict[str, bytes | None] = {}
        self._next_seq = 1
        self._durable_seq = 0
        self._snapshot_seq = 0
        # Every append and put_meta bumps `_version`; a flush is done once
        # `_durable_version` reaches the version it saw when it was called. This covers
        # metadata too, which has no seq of its own.
        self._version = 0
        self._durable_version = 0
        self._committing: asyncio.Task[None] | None = None
        self._io = asyncio.Lock()  # the hooks share one connection or one worker thread
        self._commit_count = 0

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def location(self) -> str:
        """Where the data lives, for people (a path or a URL without its password)."""
        return self._location

    async def open(self) -> None:
        """Connect, create the layout if missing, and learn the last durable seq."""
        if self._state is not _State.NEW:
            raise StoreError(f"{self._location}: a store object is opened only once")
        last_seq, snapshot_seq = await self._connect()
        self._durable_seq = last_seq
        self._next_seq = last_seq + 1
        self._snapshot_seq = snapshot_seq
        self._state = _State.OPEN

    async def close(self) -> None:
        """Flush what is pending and release the location. Calling it again does nothing.

        A store that failed is closed without flushing: what it still buffered was never
        acknowledged, and the failure was already raised to whoever flushed.
        """
        if self._state is _State.NEW:
            self._state = _State.CLOSED
            return
        if self._state is _State.CLOSED:
            return
        try:
            if self._state is _State.OPEN:
                await self.flush()
        finally:
            self._state = _State.CLOSED
            self._pending.clear()
            self._pending_meta.clear()
            async with self._io:  # waits for a commit or read still running
                await self._disconnect()

    # -- the log -----------------------------------------------------------------------

    @property
    def durable_seq(self) -> int:
        """The highest seq known to be durable (0 when the log is empty)."""
        return self._durable_seq

    @property
    def pending_count(self) -> int:
        """Records appended but not yet durable, including those of a commit in flight."""
        return self._next_seq - 1 - self._durable_seq

    @property
    def commit_count(self) -> int:
        """Transactions that `flush` committed since `open` (to observe group commit)."""
        return self._commit_count

    def append(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer one record in memory and return its seq; `flush` makes it durable."""
        self._require_open()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"a record is bytes, not {type(data).__name__}")
        # Copy a mutable buffer: the record must be what it was when it was appended.
        self._pending.append(data if isinstance(data, bytes) else bytes(data))
        seq = self._next_seq
        self._next_seq += 1
        self._version += 1
        return seq

    def put_meta(self, key: str, value: bytes | None) -> None:
        """Set (or with None delete) a metadata entry, durable with the next flush."""
        self._require_open()
        if not isinstance(key, str) or not key or len(key) > _MAX_META_KEY:
            raise StoreError(f"a meta key is a non-empty string of at most {_MAX_META_KEY} chars")
        if value is not None and not isinstance(value, bytes):
            raise TypeError(f"a meta value is bytes or None, not {type(value).__name__}")
        self._pending_meta[key] = value
        self._version += 1

    async def flush(self) -> int:
        """Make everything appended so far durable and return the highest durable seq.

        Callers that arrive while a commit is in flight wait for it, then share one commit
        of everything appended meanwhile. Cancelling a caller does not cancel the commit
        other callers are waiting on.
        """
        self._require_open()
        target = self._version
        while self._durable_version < target:
            if self._committing is None:
                self._committing = asyncio.create_task(self._commit_pending())
                self._committing.add_done_callback(_consume_outcome)
            await asyncio.shield(self._committing)
        return self._durable_seq

    async def _commit_pending(self) -> None:
        records, self._pending = self._pending, []
        meta, self._pending_meta = self._pending_meta, {}
        first_seq = self._durable_seq + 1
        version = self._version
        try:
            async with self._io:
                await self._write_batch(first_seq, records, meta)
        except asyncio.CancelledError:
            self._fail("a commit was cancelled")
            raise
        except Exception as exc:
            self._fail(f"a commit failed: {exc}")
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{self._location}: a commit failed: {exc}") from exc
        finally:
            self._committing = None
        self._durable_seq = first_seq + len(records) - 1
        self._durable_version = version
        self._commit_count += 1

    # -- recovery, snapshots, metadata ---------------------------------------------------

    async def load(self) -> Recovered:
        """The durable state: newest snapshot, every record after it in order, all metadata.

        Records still buffered are not included; a node calls this right after `open`.
        """
        self._require_open()
        async with self._io:
            snapshot, records, meta = await self._read_all()
        recovered = Recovered(snapshot, list(records), meta)
        expected = (snapshot.seq if snapshot is not None else 0) + 1
        for record in recovered.records:
            if record.seq != expected:
                raise StoreError(
                    f"{self._location}: the log is not contiguous:"
                    f" expected record {expected}, found {record.seq}"
                )
            expected += 1
        return recovered

    async def save_snapshot(self, seq: int, data: bytes) -> None:
        """Durably store the state after record `seq`, then drop the records it covers.

        Records up to `seq` that are still buffered are flushed first, so a snapshot is
        never newer than the log. A snapshot older than the current one is refused.
        """
        self._require_open()
        if not isinstance(data, bytes):
            raise TypeError(f"a snapshot is bytes, not {type(data).__name__}")
        last_appended = self._next_seq - 1
        if not self._snapshot_seq <= seq <= last_appended:
            raise StoreError(
                f"{self._location}: snapshot seq {seq} is outside"
                f" [{self._snapshot_seq}, {last_appended}] (current snapshot, last record)"
            )
        if seq > self._durable_seq:
            await self.flush()
        try:
            async with self._io:
                self._require_open()
                await self._write_snapshot(Snapshot(seq, data))
        except Exception as exc:
            self._fail(f"a snapshot failed: {exc}")
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{self._location}: a snapshot failed: {exc}") from exc
        self._snapshot_seq = seq

    async def get_meta(self, key: str) -> bytes | None:
        """The value of a metadata entry, including a put not yet flushed."""
        self._require_open()
        if key in self._pending_meta:
            return self._pending_meta[key]
        if self._committing is not None:
            # The batch in flight may hold this key; wait so the answer is not stale.
            await asyncio.shield(self._committing)
            self._require_open()
        async with self._io:
            return await self._read_meta(key)

    # -- shared checks -------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._state is _State.OPEN:
            return
        if self._state is _State.NEW:
            raise StoreError(f"{self._location}: the store is not open (use open() or async with)")
        if self._state is _State.FAILED:
            raise StoreError(
                f"{self._location}: the store is unusable since {self._failure};"
                " reopen it to recover what is durable"
            )
        raise StoreError(f"{self._location}: the store is closed")

    def _fail(self, reason: str) -> None:
        if self._state is _State.OPEN:
            self._state = _State.FAILED
            self._failure = reason

    def _blob(self, value: object, what: str) -> bytes:
        """`value` as a backend read it, checked to be bytes (a damaged store may hold
        anything): `what` names it in the error."""
        if not isinstance(value, bytes):
            raise StoreError(f"{self.location}: {what} is {type(value).__name__}, not bytes")
        return value

    # -- backend hooks -------------------------------------------------------------------

    @abstractmethod
    async def _connect(self) -> tuple[int, int]:
        """Open the location; return (last durable seq, seq of the snapshot or 0)."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Release the location; must work after a failure too."""

    @abstractmethod
    async def _write_batch(
        self, first_seq: int, records: Sequence[bytes], meta: dict[str, bytes | None]
    ) -> None:
        """Durably write records `first_seq…` and the meta changes in one transaction."""

    @abstractmethod
    async def _write_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the snapshot and delete records up to its seq, in one transaction."""

    @abstractmethod
    async def _read_all(self) -> tuple[Snapshot | None, Sequence[WalRecord], dict[str, bytes]]:
        """The snapshot, the records after it ordered by seq, and all metadata."""

    @abstractmethod
    async def _read_meta(self, key: str) -> bytes | None:
        """One durable metadata value."""


def _consume_outcome(task: asyncio.Task[None]) -> None:
    # Every waiter sees the failure through `flush`; if all of them were cancelled,
    # reading it here keeps asyncio from logging "exception was never retrieved".
    if not task.cancelled():
        task.exception()
