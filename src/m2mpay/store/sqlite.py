"""`SqliteStore`: the default store, one SQLite file per node.

Durability: WAL journal with `synchronous=FULL`, so a commit returns only after the WAL
is fsynced and survives power loss, not just process death. A batch is one transaction,
so a crash leaves it entirely present or entirely absent.

Threading: sqlite3 blocks, and an fsync takes a while; every call runs on one dedicated
worker thread that owns the connection, so the event loop keeps taking payments while a
commit is on disk, and calls reach SQLite in the order they were made.

Single writer: the connection uses `locking_mode=EXCLUSIVE`, which holds the file lock
for the connection's whole life (the kernel drops it if the process dies). A second
process, or a second store in this one, is refused instead of interleaving its log. It
also lets SQLite keep the WAL index in private memory instead of a shared-memory file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from itertools import count
from pathlib import Path
from typing import Final

from m2mpay.errors import StoreError
from m2mpay.store.base import Snapshot, Store, WalRecord
from m2mpay.store.sqlite_file import FileKind, SqliteFile, in_transaction

__all__ = ["SqliteStore"]

# STRICT tables: a value of the wrong type is refused when written, never read back.
_SCHEMA: Final = (
    "CREATE TABLE wal (seq INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT",
    "CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " seq INTEGER NOT NULL, data BLOB NOT NULL) STRICT",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT, WITHOUT ROWID",
    "CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT, WITHOUT ROWID",
)
_KIND: Final = FileKind(
    name="store",
    described="an m2mpay store",
    application_id=0x6D326D70,  # "m2mp" in the file header: this file is ours
    format=1,  # PRAGMA user_version; bump with a migration when the layout changes
    schema=_SCHEMA,
)
_PUT_META: Final = (
    "INSERT INTO meta (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_PUT_SNAPSHOT: Final = (
    "INSERT INTO snapshot (id, seq, data) VALUES (1, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, data = excluded.data"
)


class SqliteStore(Store):
    """A `Store` in one SQLite file (created with its directory if missing).

    The file remembers the namespace it was created with and refuses any other, so two
    nodes can never share one log by mistake.
    """

    def __init__(self, path: str | Path, *, namespace: str = "default") -> None:
        self._file = SqliteFile(Path(path), _KIND, thread_name="m2mpay-sqlite", describe=_describe)
        super().__init__(self._file.where)
        self._namespace = namespace

    @property
    def path(self) -> Path:
        return self._file.path

    def _in_transaction(self, work: Callable[[sqlite3.Connection], None]) -> None:
        in_transaction(self._file.db(), work)

    # -- hooks ---------------------------------------------------------------------------

    async def _connect(self) -> tuple[int, int]:
        return await self._file.open(self._created, self._last_seqs)

    def _created(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO info (key, value) VALUES ('namespace', ?)", (self._namespace,))

    def _last_seqs(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """The newest record's seq and the snapshot's; a file of another namespace refused."""
        row = conn.execute("SELECT value FROM info WHERE key = 'namespace'").fetchone()
        if row is None or row[0] != self._namespace:
            found = "none" if row is None else repr(row[0])
            raise StoreError(
                f"{self.location} belongs to namespace {found}, not {self._namespace!r}"
            )
        last = conn.execute("SELECT max(seq) FROM wal").fetchone()[0]
        row = conn.execute("SELECT seq FROM snapshot WHERE id = 1").fetchone()
        snapshot_seq = int(row[0]) if row is not None else 0
        return max(int(last or 0), snapshot_seq), snapshot_seq

    async def _disconnect(self) -> None:
        await self._file.close()

    async def _write_batch(
        self, first_seq: int, records: Sequence[bytes], meta: dict[str, bytes | None]
    ) -> None:
        def work(conn: sqlite3.Connection) -> None:
            # Plain INSERT, not OR REPLACE: an existing seq means a second writer or a
            # bug, and must fail the batch rather than overwrite a durable record.
            conn.executemany(
                "INSERT INTO wal (seq, data) VALUES (?, ?)", zip(count(first_seq), records)
            )
            puts = [(k, v) for k, v in meta.items() if v is not None]
            deletes = [(k,) for k, v in meta.items() if v is None]
            if puts:
                conn.executemany(_PUT_META, puts)
            if deletes:
                conn.executemany("DELETE FROM meta WHERE key = ?", deletes)

        await self._file.call(self._in_transaction, work)

    async def _write_snapshot(self, snapshot: Snapshot) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(_PUT_SNAPSHOT, (snapshot.seq, snapshot.data))
            conn.execute("DELETE FROM wal WHERE seq <= ?", (snapshot.seq,))

        await self._file.call(self._in_transaction, work)

    async def _read_all(self) -> tuple[Snapshot | None, Sequence[WalRecord], dict[str, bytes]]:
        return await self._file.call(self._read_all_sync)

    def _read_all_sync(self) -> tuple[Snapshot | None, list[WalRecord], dict[str, bytes]]:
        conn = self._file.db()
        row = conn.execute("SELECT seq, data FROM snapshot WHERE id = 1").fetchone()
        snapshot = None if row is None else Snapshot(int(row[0]), self._blob(row[1], "snapshot"))
        after = snapshot.seq if snapshot is not None else 0
        records = [
            WalRecord(int(seq), self._blob(data, f"record {seq}"))
            for seq, data in conn.execute(
                "SELECT seq, data FROM wal WHERE seq > ? ORDER BY seq", (after,)
            )
        ]
        meta = {
            str(key): self._blob(value, f"meta {key!r}")
            for key, value in conn.execute("SELECT key, value FROM meta")
        }
        return snapshot, records, meta

    async def _read_meta(self, key: str) -> bytes | None:
        found = await self._file.select(
            lambda row: self._blob(row[0], f"meta {key!r}"),
            "SELECT value FROM meta WHERE key = ?",
            key,
        )
        return found[0] if found else None


def _describe(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return "the store is in use by another process or store object"
    if name == "SQLITE_NOTADB":
        return "the file is not a SQLite database"
    return f"{exc} ({name})" if name else str(exc)
