"""A SQLite key-value store for py-evm, so the embedded chain survives restarts.

py-evm keeps blocks, receipts and state tries in a flat key-value database.
Writes are buffered in memory and committed in one SQLite transaction per mined
block: a process that dies loses at most the block being mined, never part of
one. Recent reads are kept in an LRU cache because a single transaction reads
hundreds of trie nodes. Tables of our own in the same file (the log index) join
that transaction, so they always describe exactly the blocks that were committed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final, Protocol

from eth.db.backends.base import BaseDB
from lru import LRU

__all__ = ["CommitParticipant", "SqliteChainDB"]

_CACHE_ENTRIES: Final = 200_000
_TOMBSTONE: Final = None


class CommitParticipant(Protocol):
    """Buffered writes of our own that must commit atomically with the chain's."""

    def has_pending(self) -> bool: ...

    def write_pending(self, conn: sqlite3.Connection) -> None: ...

    def clear_pending(self) -> None: ...


class SqliteChainDB(BaseDB):
    """py-evm's `BaseDB` over one SQLite file (WAL mode, full sync on commit)."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS kv"
            " (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._pending: dict[bytes, bytes | None] = {}
        self._pending_meta: dict[str, str] = {}
        self._cache: LRU[bytes, bytes] = LRU(_CACHE_ENTRIES)
        self._participants: list[CommitParticipant] = []

    @property
    def path(self) -> Path:
        return self._path

    @property
    def connection(self) -> sqlite3.Connection:
        """The file's connection, for tables of our own that join `commit`."""
        return self._conn

    def add_participant(self, participant: CommitParticipant) -> None:
        """Write `participant`'s buffered rows inside every `commit` transaction."""
        self._participants.append(participant)

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is _TOMBSTONE:
                raise KeyError(key)
            return value
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        self._cache[key] = value
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = _TOMBSTONE
        if key in self._cache:
            del self._cache[key]

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def get_meta(self, key: str) -> str | None:
        if key in self._pending_meta:
            return self._pending_meta[key]
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of ours (not py-evm's); durable at the next `commit`."""
        self._pending_meta[key] = value

    def commit(self) -> None:
        """Make every buffered write durable, atomically."""
        if (
            not self._pending
            and not self._pending_meta
            and not any(p.has_pending() for p in self._participants)
        ):
            return
        writes = [(k, v) for k, v in self._pending.items() if v is not _TOMBSTONE]
        deletes = [(k,) for k, v in self._pending.items() if v is _TOMBSTONE]
        conn = self._conn
        conn.execute("BEGIN")
        try:
            conn.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", writes)
            conn.executemany("DELETE FROM kv WHERE key = ?", deletes)
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                list(self._pending_meta.items()),
            )
            for participant in self._participants:
                participant.write_pending(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for key, value in writes:
            self._cache[key] = value
        self._pending.clear()
        self._pending_meta.clear()
        for participant in self._participants:
            participant.clear_pending()

    def close(self) -> None:
        self._conn.close()
