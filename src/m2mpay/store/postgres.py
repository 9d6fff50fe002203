"""`PostgresStore`: the store for hubs, many nodes in one PostgreSQL database.

Layout: three tables shared by every node of a database (or schema, through the URL's
`search_path`), keyed by namespace: `m2mpay_wal (namespace, seq, data)`,
`m2mpay_snapshot (namespace, seq, data)` and `m2mpay_meta (namespace, key, value)`.
They are created if missing.

A flush is ONE statement: the records go in as one `bytea[]` unnested WITH ORDINALITY
(seq = first seq + ordinality − 1) and the meta changes ride along as data-modifying
CTEs. A single statement in autocommit is one transaction, and it saves the BEGIN and
COMMIT round trips that dominate small batches: measured here it beats executemany and
COPY inside a transaction at every batch size from 1 to 1000 records (2× at 1–10).
Batches larger than `_CHUNK_BYTES` are split over several such statements inside an
explicit transaction, because one parameter cannot exceed PostgreSQL's 1 GB limit.

Single writer: the store holds a session advisory lock on its (schema, namespace) for
as long as it is connected; the server drops it when the connection dies, so a crashed
node's successor gets it as soon as the old session is gone.

`connect_locked`, `postgres_errors` and `redact_url` are how every store of ours in
PostgreSQL connects, locks and reports (`m2mpay.provenance.stream_postgres` too), so
that durability, the schema lock and the single-writer lock are settled once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from m2mpay.errors import StoreError
from m2mpay.store.base import Snapshot, Store, WalRecord

__all__ = [
    "PgConnection",
    "PgRow",
    "PostgresStore",
    "connect_locked",
    "postgres_errors",
    "redact_url",
]

_CONNECT_TIMEOUT_S: Final = 10.0
_LOCK_WAIT: Final = "3s"  # how long a successor waits for a dying session to let go
_CHUNK_BYTES: Final = 64 * 1024 * 1024
_SCHEMA_LOCK: Final = 0x6D326D70_00000001  # serializes CREATE TABLE IF NOT EXISTS races

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS m2mpay_wal (
    namespace text NOT NULL, seq bigint NOT NULL, data bytea NOT NULL,
    PRIMARY KEY (namespace, seq));
CREATE TABLE IF NOT EXISTS m2mpay_snapshot (
    namespace text PRIMARY KEY, seq bigint NOT NULL, data bytea NOT NULL);
CREATE TABLE IF NOT EXISTS m2mpay_meta (
    namespace text NOT NULL, key text NOT NULL, value bytea NOT NULL,
    PRIMARY KEY (namespace, key));
"""
# $1 namespace, $2 first seq, $3 records, $4/$5 meta keys/values to put, $6 keys to delete.
# A plain INSERT: an existing seq means a second writer or a bug, and fails the batch.
_WRITE_BATCH: Final = """
WITH put AS (
    INSERT INTO m2mpay_meta (namespace, key, value)
    SELECT $1, k, v FROM unnest($4::text[], $5::bytea[]) AS m(k, v)
    ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value),
del AS (
    DELETE FROM m2mpay_meta WHERE namespace = $1 AND key = ANY($6::text[]))
INSERT INTO m2mpay_wal (namespace, seq, data)
SELECT $1, $2::bigint + o - 1, d FROM unnest($3::bytea[]) WITH ORDINALITY AS u(d, o)
"""
_WRITE_SNAPSHOT: Final = """
WITH drop_covered AS (
    DELETE FROM m2mpay_wal WHERE namespace = $1 AND seq <= $2)
INSERT INTO m2mpay_snapshot (namespace, seq, data) VALUES ($1, $2, $3)
ON CONFLICT (namespace) DO UPDATE SET seq = excluded.seq, data = excluded.data
"""
_NO_TEXT: Final[list[str]] = []
_NO_BYTES: Final[list[bytes]] = []


class PgRow(Protocol):
    def __getitem__(self, index: int, /) -> object: ...


class PgConnection(Protocol):
    """The part of `asyncpg.Connection` used here (asyncpg has no type information)."""

    async def execute(self, query: str, *args: object) -> str: ...
    async def fetch(self, query: str, *args: object) -> list[PgRow]: ...
    async def fetchrow(self, query: str, *args: object) -> PgRow | None: ...
    async def fetchval(self, query: str, *args: object) -> object: ...
    async def close(self, *, timeout: float | None = None) -> None: ...
    def terminate(self) -> None: ...
    def transaction(self) -> Any: ...


class PostgresStore(Store):
    """A `Store` in a PostgreSQL database, one namespace per node."""

    def __init__(self, url: str, *, namespace: str = "default") -> None:
        super().__init__(f"{redact_url(url)} namespace {namespace!r}")
        self._url = url
        self._namespace = namespace
        self._conn: PgConnection | None = None

    def _errors(self, doing: str) -> AbstractAsyncContextManager[None]:
        return postgres_errors(self.location, doing)

    def _db(self) -> PgConnection:
        if self._conn is None:
            raise StoreError(f"{self.location}: the store is closed")
        return self._conn

    # -- hooks ---------------------------------------------------------------------------

    async def _connect(self) -> tuple[int, int]:
        conn = await connect_locked(
            self._url, self.location, _SCHEMA, "m2mpay.store:", self._namespace
        )
        try:
            async with self._errors("opening"):
                last = await conn.fetchval(
                    "SELECT max(seq) FROM m2mpay_wal WHERE namespace = $1", self._namespace
                )
                snap = await conn.fetchval(
                    "SELECT seq FROM m2mpay_snapshot WHERE namespace = $1", self._namespace
                )
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        snapshot_seq = _int(snap, "snapshot seq") if snap is not None else 0
        last_seq = _int(last, "last seq") if last is not None else 0
        return max(last_seq, snapshot_seq), snapshot_seq

    async def _disconnect(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            await conn.close(timeout=_CONNECT_TIMEOUT_S)
        except Exception:
            conn.terminate()  # a broken connection cannot say goodbye; just drop it

    async def _write_batch(
        self, first_seq: int, records: Sequence[bytes], meta: dict[str, bytes | None]
    ) -> None:
        conn = self._db()
        puts = [(k, v) for k, v in meta.items() if v is not None]
        put_keys, put_values = [k for k, _ in puts], [v for _, v in puts]
        deletes = [k for k, v in meta.items() if v is None]
        chunks = _chunks(records)
        async with self._errors("a commit"):
            if len(chunks) == 1:
                await conn.execute(
                    _WRITE_BATCH, self._namespace, first_seq, chunks[0],
                    put_keys, put_values, deletes,
                )  # fmt: skip
                return
            async with conn.transaction():
                seq = first_seq
                for chunk in chunks[:-1]:
                    await conn.execute(
                        _WRITE_BATCH, self._namespace, seq, chunk, _NO_TEXT, _NO_BYTES, _NO_TEXT
                    )
                    seq += len(chunk)
                await conn.execute(
                    _WRITE_BATCH, self._namespace, seq, chunks[-1],
                    put_keys, put_values, deletes,
                )  # fmt: skip

    async def _write_snapshot(self, snapshot: Snapshot) -> None:
        async with self._errors("a snapshot"):
            await self._db().execute(_WRITE_SNAPSHOT, self._namespace, snapshot.seq, snapshot.data)

    async def _read_all(self) -> tuple[Snapshot | None, Sequence[WalRecord], dict[str, bytes]]:
        conn = self._db()
        ns = self._namespace
        async with self._errors("loading"):
            row = await conn.fetchrow(
                "SELECT seq, data FROM m2mpay_snapshot WHERE namespace = $1", ns
            )
            snapshot = None
            if row is not None:
                snapshot = Snapshot(_int(row[0], "snapshot seq"), self._blob(row[1], "snapshot"))
            rows = await conn.fetch(
                "SELECT seq, data FROM m2mpay_wal WHERE namespace = $1 AND seq > $2 ORDER BY seq",
                ns,
                snapshot.seq if snapshot is not None else 0,
            )
            meta_rows = await conn.fetch(
                "SELECT key, value FROM m2mpay_meta WHERE namespace = $1", ns
            )
        records = [WalRecord(_int(r[0], "seq"), self._blob(r[1], f"record {r[0]}")) for r in rows]
        meta = {str(r[0]): self._blob(r[1], f"meta {r[0]!r}") for r in meta_rows}
        return snapshot, records, meta

    async def _read_meta(self, key: str) -> bytes | None:
        async with self._errors("reading meta"):
            value = await self._db().fetchval(
                "SELECT value FROM m2mpay_meta WHERE namespace = $1 AND key = $2",
                self._namespace,
                key,
            )
        return None if value is None else self._blob(value, f"meta {key!r}")


@asynccontextmanager
async def postgres_errors(location: str, doing: str) -> AsyncIterator[None]:
    """What the driver, the socket or the server raise, as the `StoreError` they mean."""
    try:
        yield
    except StoreError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise StoreError(f"{location}: {doing} failed: {exc}") from exc


async def connect_locked(
    url: str, location: str, schema: str, lock_prefix: str, lock_name: str
) -> PgConnection:
    """A connection to `url` that commits durably, with `schema` (idempotent DDL) run
    under a lock every opener shares, holding the session advisory lock named
    `lock_prefix`, the current schema, ':' and `lock_name`: `StoreError` "in use" if
    another session keeps it past `_LOCK_WAIT`. `location` names it in errors."""
    try:
        raw = await asyncpg.connect(url, timeout=_CONNECT_TIMEOUT_S)
    except Exception as exc:  # asyncpg raises many kinds for a bad URL or server
        raise StoreError(f"cannot connect to {location}: {exc}") from exc
    conn = cast(PgConnection, raw)
    try:
        async with postgres_errors(location, "opening"):
            await _prepare(conn, location, schema, lock_prefix, lock_name)
    except BaseException:
        conn.terminate()
        raise
    return conn


async def _prepare(
    conn: PgConnection, location: str, schema: str, lock_prefix: str, lock_name: str
) -> None:
    # "off" would acknowledge commits that a server crash can still lose; the node
    # acts on every acknowledged flush, so insist on at least a local flush.
    if await conn.fetchval("SHOW synchronous_commit") == "off":
        await conn.execute("SET synchronous_commit = on")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(schema)
    await conn.execute(f"SET lock_timeout = '{_LOCK_WAIT}'")
    try:
        await conn.execute(
            "SELECT pg_advisory_lock(hashtextextended("
            "$1 || coalesce(current_schema(), '') || ':' || $2, 0))",
            lock_prefix,
            lock_name,
        )
    except asyncpg.LockNotAvailableError as exc:
        raise StoreError(f"{location} is in use by another store") from exc
    await conn.execute("RESET lock_timeout")


def _chunks(records: Sequence[bytes]) -> list[list[bytes]]:
    chunks: list[list[bytes]] = [[]]
    size = 0
    for record in records:
        if chunks[-1] and size + len(record) > _CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(record)
        size += len(record)
    return chunks


def _int(value: object, what: str) -> int:
    if not isinstance(value, int):
        raise StoreError(f"{what} is {type(value).__name__}, not an integer")
    return value


def redact_url(url: str) -> str:
    """The URL without its password, fit for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
    except ValueError:
        return "<unparsable URL>"
