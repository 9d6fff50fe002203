"""`PostgresStreamStore`: provenance streams in a PostgreSQL database, beside a node
store there (`m2mpay.store.postgres`: the same driver, connection and URL).

One stream store per schema (the database's, or the URL's `search_path`): it holds a
session advisory lock on it while connected, as the node store does on its namespace,
so a second store is refused and a crashed node's successor gets it once the old
session is gone. The tables are those of `SqliteStreamStore`, prefixed `m2mpay_` and
created if missing; bytes are `bytea` and integers `bigint`, so what SQLite keeps is
kept whole (an index is at most 2^63 - 1 in both).

A group commit of `StreamStore` is one statement (its roots and messages unnested from
arrays, the roots in a data-modifying CTE), so one transaction that a crash leaves whole
or absent; past `_CHUNK_BYTES` of messages it is several inside one explicit
transaction, since one parameter cannot exceed PostgreSQL's 1 GB. The primary key
(stream, idx) refuses a second message at an index even if a bug got past the checks;
a leaf's (stream, idx) is unique, so no head is ever in two batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from m2mpay.crypto import Address
from m2mpay.errors import StoreError
from m2mpay.provenance.records import StreamBatch, StreamHead
from m2mpay.provenance.stream_format import StreamMessage, StreamRoot, decode_message
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.store.postgres import (
    PgConnection,
    connect_locked,
    postgres_errors,
    redact_url,
)

__all__ = ["PostgresStreamStore"]

_FORMAT: Final = 2  # as SqliteStreamStore's file: 2 is anchor batches
_CHUNK_BYTES: Final = 64 * 1024 * 1024
_CLOSE_WAIT_S: Final = 10.0
_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS m2mpay_stream_format (
    one boolean PRIMARY KEY DEFAULT true CHECK (one), format integer NOT NULL);
INSERT INTO m2mpay_stream_format (format) VALUES ({_FORMAT}) ON CONFLICT (one) DO NOTHING;
CREATE TABLE IF NOT EXISTS m2mpay_stream_root (
    n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id bytea NOT NULL UNIQUE,
    author bytea NOT NULL, data bytea NOT NULL);
CREATE INDEX IF NOT EXISTS m2mpay_stream_root_author ON m2mpay_stream_root (author, n);
CREATE TABLE IF NOT EXISTS m2mpay_stream_message (
    stream bytea NOT NULL, idx bigint NOT NULL, data bytea NOT NULL,
    PRIMARY KEY (stream, idx));
CREATE TABLE IF NOT EXISTS m2mpay_stream_batch (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, root bytea NOT NULL,
    created_ms bigint NOT NULL, from_block bigint NOT NULL, tx_hash bytea,
    block_number bigint, gas_used bigint);
CREATE TABLE IF NOT EXISTS m2mpay_stream_leaf (
    batch bigint NOT NULL REFERENCES m2mpay_stream_batch (id), pos integer NOT NULL,
    stream bytea NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL,
    PRIMARY KEY (batch, pos), UNIQUE (stream, idx));
"""
# $1-$3 roots (id, author, data), kept in their order (their n is the listing's order);
# $4-$6 messages (stream, idx, data). A plain INSERT of messages: an index taken means a
# second writer or a bug, and must fail the commit rather than replace a durable message.
_WRITE: Final = """
WITH kept_roots AS (
    INSERT INTO m2mpay_stream_root (id, author, data)
    SELECT i, a, d FROM unnest($1::bytea[], $2::bytea[], $3::bytea[])
        WITH ORDINALITY AS r(i, a, d, o) ORDER BY o
    ON CONFLICT (id) DO NOTHING)
INSERT INTO m2mpay_stream_message (stream, idx, data)
SELECT s, x, d FROM unnest($4::bytea[], $5::bigint[], $6::bytea[]) AS m(s, x, d)
"""
_UNANCHORED_HEADS: Final = """
SELECT m.data FROM m2mpay_stream_root r
JOIN LATERAL (SELECT idx, data FROM m2mpay_stream_message WHERE stream = r.id
              ORDER BY idx DESC LIMIT 1) m ON true
WHERE m.idx > COALESCE((SELECT max(idx) FROM m2mpay_stream_leaf WHERE stream = r.id), -1)
ORDER BY r.n LIMIT $1
"""
_NO_BYTES: Final[list[bytes]] = []


class PostgresStreamStore(StreamStore):
    """A `StreamStore` in the PostgreSQL database (and schema) at `url`."""

    def __init__(self, url: str, *, cached_heads: int = 10_000) -> None:
        super().__init__(f"{redact_url(url)} streams", cached_heads=cached_heads)
        self._url = url
        self._conn: PgConnection | None = None

    def _db(self) -> PgConnection:
        if self._conn is None:
            raise StoreError(f"{self.location}: the stream store is closed")
        return self._conn

    async def _connect(self) -> None:
        conn = await connect_locked(self._url, self.location, _SCHEMA, "m2mpay.streams:", "")
        try:
            async with postgres_errors(self.location, "opening"):
                found = await conn.fetchval("SELECT format FROM m2mpay_stream_format")
        except BaseException:
            conn.terminate()
            raise
        if found != _FORMAT:
            conn.terminate()
            raise StoreError(
                f"{self.location}: stream tables of format {found!r}, not {_FORMAT}"
                " (a newer m2mpay's?)"
            )
        self._conn = conn

    async def _disconnect(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            await conn.close(timeout=_CLOSE_WAIT_S)
        except Exception:
            conn.terminate()  # a broken connection cannot say goodbye; just drop it

    async def _write(self, roots: Sequence[StreamRoot], messages: Sequence[StreamMessage]) -> None:
        conn = self._db()
        root_columns = (
            [r.stream_id for r in roots],
            [bytes(r.author) for r in roots],
            [r.raw for r in roots],
        )
        chunks = _chunks(messages)
        async with postgres_errors(self.location, "a commit"):
            if len(chunks) == 1:
                await conn.execute(_WRITE, *root_columns, *_message_columns(chunks[0]))
                return
            async with conn.transaction():
                await conn.execute(_WRITE, *root_columns, *_message_columns(chunks[0]))
                for chunk in chunks[1:]:
                    await conn.execute(
                        _WRITE, _NO_BYTES, _NO_BYTES, _NO_BYTES, *_message_columns(chunk)
                    )

    async def _read_root(self, stream_id: bytes) -> bytes | None:
        found = await self._blobs("SELECT data FROM m2mpay_stream_root WHERE id = $1", stream_id)
        return found[0] if found else None

    async def _read_roots(self, author: Address | None, limit: int) -> list[bytes]:
        if author is None:
            return await self._blobs(
                "SELECT data FROM m2mpay_stream_root ORDER BY n LIMIT $1", limit
            )
        return await self._blobs(
            "SELECT data FROM m2mpay_stream_root WHERE author = $1 ORDER BY n LIMIT $2",
            bytes(author),
            limit,
        )

    async def _read_head(self, stream_id: bytes) -> bytes | None:
        found = await self._blobs(
            "SELECT data FROM m2mpay_stream_message WHERE stream = $1 ORDER BY idx DESC LIMIT 1",
            stream_id,
        )
        return found[0] if found else None

    async def _read_messages(self, stream_id: bytes, start: int, limit: int) -> list[bytes]:
        return await self._blobs(
            "SELECT data FROM m2mpay_stream_message WHERE stream = $1 AND idx >= $2"
            " ORDER BY idx LIMIT $3",
            stream_id,
            start,
            limit,
        )

    async def _read_unanchored_heads(self, limit: int) -> list[StreamHead]:
        heads = [decode_message(data) for data in await self._blobs(_UNANCHORED_HEADS, limit)]
        return [StreamHead(m.stream_id, m.index, m.hash) for m in heads]

    async def _blobs(self, query: str, *parameters: object) -> list[bytes]:
        """The one column of bytes a query selects, row by row."""
        async with postgres_errors(self.location, "a read"):
            rows = await self._db().fetch(query, *parameters)
        return [_bytes(row[0], "a stored value") for row in rows]

    async def _write_batch(self, batch: StreamBatch) -> int:
        conn = self._db()
        async with postgres_errors(self.location, "recording a batch"), conn.transaction():
            batch_id = _int(
                await conn.fetchval(
                    "INSERT INTO m2mpay_stream_batch (root, created_ms, from_block)"
                    " VALUES ($1, $2, $3) RETURNING id",
                    batch.root,
                    batch.created_ms,
                    batch.from_block,
                ),
                "a batch id",
            )
            await conn.execute(
                "INSERT INTO m2mpay_stream_leaf (batch, pos, stream, idx, hash)"
                " SELECT $1, o - 1, s, x, h FROM unnest($2::bytea[], $3::bigint[], $4::bytea[])"
                " WITH ORDINALITY AS l(s, x, h, o)",
                batch_id,
                [h.stream_id for h in batch.heads],
                [h.index for h in batch.heads],
                [h.hash for h in batch.heads],
            )
        return batch_id

    async def _write_batch_anchored(
        self, batch_id: int, tx_hash: bytes, block_number: int | None, gas_used: int | None
    ) -> None:
        async with postgres_errors(self.location, "marking a batch"):
            await self._db().execute(
                "UPDATE m2mpay_stream_batch SET tx_hash = $1, block_number = $2, gas_used = $3"
                " WHERE id = $4",
                tx_hash,
                block_number,
                gas_used,
                batch_id,
            )

    async def _read_batch(self, batch_id: int) -> StreamBatch | None:
        conn = self._db()
        async with postgres_errors(self.location, "reading a batch"):
            row = await conn.fetchrow(
                "SELECT root, created_ms, from_block, tx_hash, block_number, gas_used"
                " FROM m2mpay_stream_batch WHERE id = $1",
                batch_id,
            )
            if row is None:
                return None
            leaves = await conn.fetch(
                "SELECT stream, idx, hash FROM m2mpay_stream_leaf WHERE batch = $1 ORDER BY pos",
                batch_id,
            )
        tx_hash, block_number, gas_used = row[3], row[4], row[5]
        return StreamBatch(
            id=batch_id,
            root=_bytes(row[0], "a batch root"),
            created_ms=_int(row[1], "a batch's time"),
            from_block=_int(row[2], "a batch's block"),
            tx_hash=None if tx_hash is None else _bytes(tx_hash, "a batch's transaction"),
            block_number=None if block_number is None else _int(block_number, "a block"),
            gas_used=None if gas_used is None else _int(gas_used, "a batch's gas"),
            heads=tuple(
                StreamHead(_bytes(s, "a leaf"), _int(x, "a leaf"), _bytes(h, "a leaf"))
                for s, x, h in ((leaf[0], leaf[1], leaf[2]) for leaf in leaves)
            ),
        )

    async def _read_unanchored_batches(self) -> list[StreamBatch]:
        async with postgres_errors(self.location, "reading batches"):
            rows = await self._db().fetch(
                "SELECT id FROM m2mpay_stream_batch WHERE block_number IS NULL ORDER BY id"
            )
        found = [await self._read_batch(_int(row[0], "a batch id")) for row in rows]
        return [batch for batch in found if batch is not None]

    async def _read_anchors(self, stream_id: bytes, index: int) -> list[tuple[int, int]]:
        async with postgres_errors(self.location, "reading anchors"):
            rows = await self._db().fetch(
                "SELECT batch, pos FROM m2mpay_stream_leaf WHERE stream = $1 AND idx >= $2"
                " ORDER BY idx",
                stream_id,
                index,
            )
        return [(_int(row[0], "a batch id"), _int(row[1], "a leaf position")) for row in rows]


def _chunks(messages: Sequence[StreamMessage]) -> list[Sequence[StreamMessage]]:
    """The messages in runs of at most `_CHUNK_BYTES` (one if it is larger)."""
    chunks: list[Sequence[StreamMessage]] = []
    start = size = 0
    for at, message in enumerate(messages):
        if at > start and size + len(message.raw) > _CHUNK_BYTES:
            chunks.append(messages[start:at])
            start, size = at, 0
        size += len(message.raw)
    chunks.append(messages[start:])
    return chunks


def _message_columns(
    messages: Sequence[StreamMessage],
) -> tuple[list[bytes], list[int], list[bytes]]:
    return [m.stream_id for m in messages], [m.index for m in messages], [m.raw for m in messages]


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise StoreError(f"{what} is {type(value).__name__}, not bytes")
    return value


def _int(value: object, what: str) -> int:
    if not isinstance(value, int):
        raise StoreError(f"{what} is {type(value).__name__}, not an integer")
    return value
