"""`SqliteStreamStore`: provenance streams in one SQLite file of the data dir.

Through `SqliteFile`, as the node's and the device bus's stores: a WAL journal with
`synchronous=FULL` (a commit returns once fsynced), one exclusive lock for the
connection's life, one worker thread that owns the connection. Each group commit of
`StreamStore` is one transaction, so a crash leaves it whole or absent; the primary key
(stream, index) refuses a second message at an index even if a bug got past the checks.

Anchor batches (format 2) are a row each and a row per leaf; a leaf's (stream, idx) is
unique, so no head is ever in two batches, and the stream's highest leaf is what the
next batch starts above.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from m2mpay.crypto import Address
from m2mpay.provenance.records import StreamBatch, StreamHead
from m2mpay.provenance.stream_format import StreamMessage, StreamRoot, decode_message
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.store.sqlite_file import FileKind, SqliteFile, in_transaction

__all__ = ["SqliteStreamStore"]

# STRICT tables: a value of the wrong type is refused when written, never read back.
_SCHEMA: Final = (
    "CREATE TABLE stream_root (n INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
    " author BLOB NOT NULL, data BLOB NOT NULL) STRICT",
    "CREATE INDEX stream_root_author ON stream_root (author, n)",
    "CREATE TABLE stream_message (stream BLOB NOT NULL, idx INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY (stream, idx)) STRICT",
    "CREATE TABLE stream_batch (id INTEGER PRIMARY KEY, root BLOB NOT NULL,"
    " created_ms INTEGER NOT NULL, from_block INTEGER NOT NULL, tx_hash BLOB,"
    " block_number INTEGER, gas_used INTEGER) STRICT",
    "CREATE TABLE stream_leaf (batch INTEGER NOT NULL REFERENCES stream_batch (id),"
    " pos INTEGER NOT NULL, stream BLOB NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,"
    " PRIMARY KEY (batch, pos), UNIQUE (stream, idx)) STRICT",
)
_KIND: Final = FileKind(
    name="stream store",
    described="an m2mpay stream store",
    application_id=0x6D327073,  # "m2ps": this file holds m2mpay provenance streams
    format=2,  # 2: anchor batches
    schema=_SCHEMA,
)


class SqliteStreamStore(StreamStore):
    def __init__(self, path: str | Path, *, cached_heads: int = 10_000) -> None:
        self._file = SqliteFile(Path(path), _KIND, thread_name="m2mpay-streams")
        super().__init__(self._file.where, cached_heads=cached_heads)
        self.path = self._file.path

    async def _connect(self) -> None:
        await self._file.open(_nothing, _nothing)

    async def _disconnect(self) -> None:
        await self._file.close()

    async def _write(self, roots: Sequence[StreamRoot], messages: Sequence[StreamMessage]) -> None:
        root_rows = [(r.stream_id, bytes(r.author), r.raw) for r in roots]
        message_rows = [(m.stream_id, m.index, m.raw) for m in messages]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO stream_root (id, author, data) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                root_rows,
            )
            # Plain INSERT: an index taken means a second writer or a bug, and must fail
            # the commit rather than replace a durable message.
            conn.executemany(
                "INSERT INTO stream_message (stream, idx, data) VALUES (?, ?, ?)", message_rows
            )

        await self._file.call(in_transaction, self._file.db(), work, "BEGIN IMMEDIATE")

    async def _read_root(self, stream_id: bytes) -> bytes | None:
        found = await self._blobs("SELECT data FROM stream_root WHERE id = ?", (stream_id,))
        return found[0] if found else None

    async def _read_roots(self, author: Address | None, limit: int) -> list[bytes]:
        if author is None:
            return await self._blobs("SELECT data FROM stream_root ORDER BY n LIMIT ?", (limit,))
        return await self._blobs(
            "SELECT data FROM stream_root WHERE author = ? ORDER BY n LIMIT ?",
            (bytes(author), limit),
        )

    async def _read_head(self, stream_id: bytes) -> bytes | None:
        found = await self._blobs(
            "SELECT data FROM stream_message WHERE stream = ? ORDER BY idx DESC LIMIT 1",
            (stream_id,),
        )
        return found[0] if found else None

    async def _read_messages(self, stream_id: bytes, start: int, limit: int) -> list[bytes]:
        return await self._blobs(
            "SELECT data FROM stream_message WHERE stream = ? AND idx >= ? ORDER BY idx LIMIT ?",
            (stream_id, start, limit),
        )

    async def _read_unanchored_heads(self, limit: int) -> list[StreamHead]:
        found = await self._blobs(
            "SELECT m.data FROM stream_root r"
            " JOIN stream_message m ON m.stream = r.id AND m.idx ="
            "  (SELECT MAX(idx) FROM stream_message WHERE stream = r.id)"
            " WHERE m.idx >"
            "  COALESCE((SELECT MAX(idx) FROM stream_leaf WHERE stream = r.id), -1)"
            " ORDER BY r.n LIMIT ?",
            (limit,),
        )
        heads = [decode_message(data) for data in found]
        return [StreamHead(m.stream_id, m.index, m.hash) for m in heads]

    async def _blobs(self, query: str, parameters: tuple[object, ...]) -> list[bytes]:
        """The one column of bytes a query selects, row by row."""
        return await self._file.select(_first_bytes, query, *parameters)

    async def _write_batch(self, batch: StreamBatch) -> int:
        def work(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO stream_batch (root, created_ms, from_block) VALUES (?, ?, ?)",
                (batch.root, batch.created_ms, batch.from_block),
            )
            batch_id = cursor.lastrowid
            assert batch_id is not None
            conn.executemany(
                "INSERT INTO stream_leaf (batch, pos, stream, idx, hash) VALUES (?, ?, ?, ?, ?)",
                [(batch_id, at, h.stream_id, h.index, h.hash) for at, h in enumerate(batch.heads)],
            )
            return batch_id

        return await self._file.call(in_transaction, self._file.db(), work, "BEGIN IMMEDIATE")

    async def _write_batch_anchored(
        self, batch_id: int, tx_hash: bytes, block_number: int | None, gas_used: int | None
    ) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE stream_batch SET tx_hash = ?, block_number = ?, gas_used = ? WHERE id = ?",
                (tx_hash, block_number, gas_used, batch_id),
            )

        await self._file.call(in_transaction, self._file.db(), work, "BEGIN IMMEDIATE")

    def _batch_sync(self, batch_id: int) -> StreamBatch | None:
        db = self._file.db()
        row = db.execute(
            "SELECT root, created_ms, from_block, tx_hash, block_number, gas_used"
            " FROM stream_batch WHERE id = ?",
            (batch_id,),
        ).fetchone()
        if row is None:
            return None
        root, created_ms, from_block, tx_hash, block_number, gas_used = row
        heads = tuple(
            StreamHead(bytes(stream), idx, bytes(hashed))
            for stream, idx, hashed in db.execute(
                "SELECT stream, idx, hash FROM stream_leaf WHERE batch = ? ORDER BY pos",
                (batch_id,),
            )
        )
        return StreamBatch(
            id=batch_id,
            root=bytes(root),
            created_ms=created_ms,
            from_block=from_block,
            tx_hash=None if tx_hash is None else bytes(tx_hash),
            block_number=block_number,
            gas_used=gas_used,
            heads=heads,
        )

    async def _read_batch(self, batch_id: int) -> StreamBatch | None:
        return await self._file.call(self._batch_sync, batch_id)

    async def _read_unanchored_batches(self) -> list[StreamBatch]:
        def read() -> list[StreamBatch]:
            ids = self._file.db().execute(
                "SELECT id FROM stream_batch WHERE block_number IS NULL ORDER BY id"
            )
            found = [self._batch_sync(batch_id) for (batch_id,) in ids.fetchall()]
            return [batch for batch in found if batch is not None]

        return await self._file.call(read)

    async def _read_anchors(self, stream_id: bytes, index: int) -> list[tuple[int, int]]:
        return await self._file.select(
            lambda row: (row[0], row[1]),
            "SELECT batch, pos FROM stream_leaf WHERE stream = ? AND idx >= ? ORDER BY idx",
            stream_id,
            index,
        )


def _first_bytes(row: tuple[Any, ...]) -> bytes:
    return bytes(row[0])


def _nothing(conn: sqlite3.Connection) -> None:
    del conn
