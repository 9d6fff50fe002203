"""`StreamStore`: where provenance streams are kept, durably (`MemoryStreamStore` in
`stream_memory`, `SqliteStreamStore` in `stream_sqlite`, `PostgresStreamStore` in
`stream_postgres`).

What every store guarantees, checked here once for every backend:

- **Durable before served.** `add_root` and `append` return once what they were given
  is durable; reads (`root`, `head`, `messages`, `roots`) only ever see durable data.
  Appends that arrive while a commit is on disk share the next one (group commit), so
  hundreds of streams written at once cost a few fsyncs, not one each.
- **No gap, no duplicate.** An append continues its stream: the first message has index
  0 and the stream id as prev, each next one the index and hash of the one before
  (counting appends not yet durable). Anything else is refused with
  `ProvenanceError("conflict")` before it is queued, and nothing of that call is
  kept. A message is never checked for its signature here: a writer signs what it
  appends, an import verifies before it stores.
- **Bounded memory.** The checks need each stream's last message; past `cached_heads`
  streams, those the disk already holds are dropped after a commit and read back when a
  stream is written again (a head still queued stays, since the disk is behind it).
- **Anchors kept.** A batch of heads is recorded (leaves, root, the chain's height)
  before it is submitted, with its transaction's hash once sent and its block once
  mined, so that a restart finds what was submitted but not confirmed
  (`unanchored_batches`) and a head
  is never put in two batches (`unanchored_heads` only offers heads above every
  recorded one). `anchors` finds the batches that prove a message.
- **Fail closed.** A commit that fails leaves the store unusable (`StoreError` on every
  call): whether it reached the disk is unknown, and only a reopened store knows what is
  durable (as `m2mpay.store` does).

Backends provide the `_connect`, `_disconnect`, `_write*`, and `_read_*` hooks, which
are never called concurrently with each other.
"""

from __future__ import annotations

import asyncio
import dataclasses
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from m2mpay.crypto import Address
from m2mpay.errors import ProvenanceError, StoreError
from m2mpay.lifecycle import Openable
from m2mpay.provenance.records import StreamBatch, StreamHead
from m2mpay.provenance.stream_format import (
    StreamInvalid,
    StreamMessage,
    StreamRoot,
    decode_message,
    decode_root,
)

__all__ = ["MAX_READ", "StreamStore"]

_MAX_INDEX: Final = (1 << 63) - 1  # what a SQLite integer and a PostgreSQL bigint hold
MAX_READ: Final = 10_000
_T = TypeVar("_T")


class StreamStore(Openable):
    """See the module docstring. Open it once (`async with`); to restart, make another."""

    def __init__(self, location: str, *, cached_heads: int = 10_000) -> None:
        self.location = location
        self._cached_heads = cached_heads
        self._forgotten = 0  # how many times durable heads were dropped from memory
        self._open = False
        self._failure: str | None = None
        self._roots: set[bytes] = set()  # ids known to be stored or queued
        self._heads: dict[bytes, StreamMessage | None] = {}  # last stored or queued
        self._pending_roots: list[StreamRoot] = []
        self._pending: list[StreamMessage] = []
        self._version = 0
        self._durable_version = 0
        self._committing: asyncio.Task[None] | None = None
        self._io = asyncio.Lock()
        self.commit_count = 0
        self._watchers: list[Callable[[int], None]] = []

    async def open(self) -> None:
        if self._open or self._failure is not None:
            raise StoreError(f"{self.location}: a stream store is opened once")
        await self._connect()
        self._open = True

    async def close(self) -> None:
        if not self._open:
            return
        try:
            if self._failure is None:
                await self._flush()
        finally:
            self._open = False
            async with self._io:
                await self._disconnect()

    # -- writes

    async def add_root(self, root: StreamRoot) -> bool:
        """Keep a stream's root; False if it was kept before (its id is its hash)."""
        self._require_open()
        stored = await self._has_root(root.stream_id)
        if not stored and root.stream_id not in self._roots:  # not queued meanwhile either
            self._roots.add(root.stream_id)
            self._heads.setdefault(root.stream_id, None)
            self._pending_roots.append(root)
            self._version += 1
            await self._flush()
            return True
        await self._flush()  # it may be queued by another caller: durable when we return
        return False

    async def append(self, messages: Sequence[StreamMessage]) -> None:
        """Keep messages that continue their streams, durably; see the module docstring."""
        self._require_open()
        if not messages:
            return
        streams = list(dict.fromkeys(m.stream_id for m in messages))
        for stream in streams:
            if not await self._has_root(stream):
                raise ProvenanceError("unknown_stream", f"no root of 0x{stream.hex()}")
        while any(stream not in self._heads for stream in streams):
            for stream in streams:
                await self._load_head(stream)
            self._require_open()  # the reads yielded: the store may have failed since
        # From here on nothing yields until the messages are queued, so no other append
        # can slip in between the check and the queue.
        heads = {stream: self._heads[stream] for stream in streams}
        for message in messages:
            stream = message.stream_id
            head = heads[stream]
            index, prev = (0, stream) if head is None else (head.index + 1, head.hash)
            if message.index != index or message.prev != prev or message.index > _MAX_INDEX:
                raise ProvenanceError(
                    "conflict",
                    f"0x{stream.hex()[:16]}…: message {message.index} does not continue"
                    f" the stream (next is {index})",
                )
            heads[stream] = message
        self._heads.update(heads)
        self._pending.extend(messages)
        self._version += 1
        await self._flush()
        for watcher in self._watchers:
            watcher(len(messages))

    def watch(self, appended: Callable[[int], None]) -> None:
        """Have `appended(count)` called after each append, once its messages are
        durable (the anchorer counts what waits so)."""
        self._watchers.append(appended)

    # -- reads (durable data only)

    async def root(self, stream_id: bytes) -> StreamRoot | None:
        self._require_open()
        async with self._io:
            data = await self._read_root(stream_id)
        return None if data is None else self._decoded_root(data)

    async def roots(self, author: Address | None = None, limit: int = 1000) -> list[StreamRoot]:
        """Streams kept, oldest first; those of `author` only if given."""
        self._require_open()
        async with self._io:
            found = await self._read_roots(author, min(limit, MAX_READ))
        return [self._decoded_root(data) for data in found]

    async def head(self, stream_id: bytes) -> StreamMessage | None:
        """The stream's last durable message (None: none yet, or no such stream)."""
        self._require_open()
        async with self._io:
            data = await self._read_head(stream_id)
        return None if data is None else self._decoded(data)

    async def messages(
        self, stream_id: bytes, start: int = 0, limit: int = 1000
    ) -> list[StreamMessage]:
        """Up to `limit` durable messages from index `start`, in order."""
        self._require_open()
        async with self._io:
            found = await self._read_messages(stream_id, start, min(limit, MAX_READ))
        return [self._decoded(data) for data in found]

    # -- anchoring (`m2mpay.provenance.stream_anchor` drives it)

    async def unanchored_heads(self, limit: int) -> list[StreamHead]:
        """Up to `limit` streams' durable heads above the last head of theirs recorded in
        a batch, oldest stream first."""
        self._require_open()
        await self._flush()
        async with self._io:
            return await self._read_unanchored_heads(min(limit, MAX_READ))

    async def record_batch(
        self, root: bytes, heads: Sequence[StreamHead], created_ms: int, from_block: int
    ) -> StreamBatch:
        """Keep a batch about to be submitted, durably; returns it with its id."""
        if not heads:
            raise ValueError("a batch holds at least one head")
        batch = StreamBatch(
            id=0, root=root, created_ms=created_ms, from_block=from_block, heads=tuple(heads)
        )
        batch_id = await self._anchor_write(lambda: self._write_batch(batch))
        return dataclasses.replace(batch, id=batch_id)

    async def mark_batch_sent(self, batch_id: int, tx_hash: bytes) -> None:
        """Keep the hash of the transaction that anchors the batch, before it is mined."""
        await self._anchor_write(lambda: self._write_batch_anchored(batch_id, tx_hash, None, None))

    async def mark_batch_anchored(
        self, batch_id: int, tx_hash: bytes, block_number: int, gas_used: int
    ) -> None:
        await self._anchor_write(
            lambda: self._write_batch_anchored(batch_id, tx_hash, block_number, gas_used)
        )

    async def stream_batch(self, batch_id: int) -> StreamBatch | None:
        self._require_open()
        async with self._io:
            return await self._read_batch(batch_id)

    async def unanchored_batches(self) -> list[StreamBatch]:
        """Batches recorded but not yet seen on chain, oldest first."""
        self._require_open()
        async with self._io:
            return await self._read_unanchored_batches()

    async def anchors(self, stream_id: bytes, index: int = 0) -> list[tuple[StreamBatch, int]]:
        """The batches holding a head of the stream at `index` or later, by that head's
        index, each with the head's position among its leaves."""
        self._require_open()
        async with self._io:
            found = await self._read_anchors(stream_id, index)
            batches = {b: await self._read_batch(b) for b in dict.fromkeys(b for b, _ in found)}
        return [(batch, at) for b, at in found if (batch := batches[b]) is not None]

    async def _anchor_write(self, write: Callable[[], Awaitable[_T]]) -> _T:
        self._require_open()
        try:
            async with self._io:
                return await write()
        except BaseException as exc:
            # As a failed commit: whether it reached the disk is unknown.
            self._failure = f"an anchor write failed: {exc!r}"
            if isinstance(exc, StoreError | asyncio.CancelledError):
                raise
            raise StoreError(f"{self.location}: an anchor write failed: {exc}") from exc

    # -- inside

    async def _has_root(self, stream_id: bytes) -> bool:
        if stream_id in self._roots:
            return True
        async with self._io:
            stored = await self._read_root(stream_id) is not None
        if stored:
            self._roots.add(stream_id)
        return stored

    async def _load_head(self, stream_id: bytes) -> None:
        if stream_id not in self._heads:
            forgotten = self._forgotten
            async with self._io:
                data = await self._read_head(stream_id)
            # Another append may have filled it while this one read: that one is newer.
            # If heads were forgotten meanwhile, what was read may be older than the disk.
            if forgotten == self._forgotten:
                self._heads.setdefault(stream_id, None if data is None else self._decoded(data))

    def _forget_durable_heads(self) -> None:
        """Keep memory bounded over many streams: drop what the disk knows as well. A
        stream with messages or a root still queued keeps its head (the disk is behind)."""
        queued = {m.stream_id for m in self._pending} | {r.stream_id for r in self._pending_roots}
        self._heads = {s: head for s, head in self._heads.items() if s in queued}
        self._roots = {s for s in self._roots if s in queued}
        self._forgotten += 1

    async def _flush(self) -> None:
        target = self._version
        while self._durable_version < target:
            self._require_open()
            if self._committing is None:
                self._committing = asyncio.create_task(self._commit_pending())
                self._committing.add_done_callback(_consume_outcome)
            await asyncio.shield(self._committing)

    async def _commit_pending(self) -> None:
        roots, self._pending_roots = self._pending_roots, []
        messages, self._pending = self._pending, []
        version = self._version
        try:
            async with self._io:
                await self._write(roots, messages)
        except BaseException as exc:
            self._failure = f"a commit failed: {exc!r}"
            if isinstance(exc, StoreError | asyncio.CancelledError):
                raise
            raise StoreError(f"{self.location}: a commit failed: {exc}") from exc
        finally:
            self._committing = None
        self._durable_version = version
        self.commit_count += 1
        if len(self._heads) > self._cached_heads:
            self._forget_durable_heads()

    def _require_open(self) -> None:
        if self._failure is not None:
            raise StoreError(
                f"{self.location}: the stream store is unusable since {self._failure};"
                " reopen it to recover what is durable"
            )
        if not self._open:
            raise StoreError(f"{self.location}: the stream store is not open")

    def _decoded(self, data: bytes) -> StreamMessage:
        try:
            return decode_message(data)
        except StreamInvalid as exc:
            raise StoreError(f"{self.location}: a stored message is unreadable: {exc}") from None

    def _decoded_root(self, data: bytes) -> StreamRoot:
        try:
            return decode_root(data)
        except StreamInvalid as exc:
            raise StoreError(f"{self.location}: a stored root is unreadable: {exc}") from None

    # -- backend hooks

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _write(self, roots: Sequence[StreamRoot], messages: Sequence[StreamMessage]) -> None:
        """Durably write roots and messages, in one transaction."""

    @abstractmethod
    async def _read_root(self, stream_id: bytes) -> bytes | None: ...

    @abstractmethod
    async def _read_roots(self, author: Address | None, limit: int) -> list[bytes]: ...

    @abstractmethod
    async def _read_head(self, stream_id: bytes) -> bytes | None: ...

    @abstractmethod
    async def _read_messages(self, stream_id: bytes, start: int, limit: int) -> list[bytes]: ...

    @abstractmethod
    async def _read_unanchored_heads(self, limit: int) -> list[StreamHead]: ...

    @abstractmethod
    async def _write_batch(self, batch: StreamBatch) -> int:
        """Durably keep `batch` (its id ignored) and its leaves; returns its new id."""

    @abstractmethod
    async def _write_batch_anchored(
        self, batch_id: int, tx_hash: bytes, block_number: int | None, gas_used: int | None
    ) -> None:
        """Set the batch's transaction (and its block and gas once mined)."""

    @abstractmethod
    async def _read_batch(self, batch_id: int) -> StreamBatch | None: ...

    @abstractmethod
    async def _read_unanchored_batches(self) -> list[StreamBatch]: ...

    @abstractmethod
    async def _read_anchors(self, stream_id: bytes, index: int) -> list[tuple[int, int]]:
        """(batch id, leaf position) of the stream's heads at `index` or later, by index."""


def _consume_outcome(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
