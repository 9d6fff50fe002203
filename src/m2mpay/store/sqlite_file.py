"""`SqliteFile`: one SQLite file of ours, its one connection owned by one worker thread.

What the node's store (`SqliteStore`) and the device bus's store (`SqliteDeviceStore`)
share: sqlite3 blocks and an fsync takes a while, so every call runs on a dedicated
worker thread and the event loop never waits on a disk, and calls reach SQLite in the
order they were made. The file is opened with `locking_mode=EXCLUSIVE` (held for the
connection's life, so a second process is refused instead of interleaving its writes),
a WAL journal and `synchronous=FULL` (a commit returns once fsynced), and its header's
application id and format say whose file it is before anything is read from it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from m2mpay.errors import StoreError

__all__ = ["FileKind", "SqliteFile", "in_transaction"]

_T = TypeVar("_T")

_LOCK_WAIT_S: Final = 1.0  # a process that is closing the file gets this long to let go


@dataclass(frozen=True, slots=True)
class FileKind:
    """Whose file it is: the header's application id, the layout's format, the schema a
    new file is created with, and how errors name it (`the store is closed`, `not an
    m2mpay store`)."""

    name: str
    described: str
    application_id: int
    format: int
    schema: Sequence[str]


class SqliteFile:
    """The worker thread and the connection; `where` names the file in every error."""

    def __init__(
        self,
        path: Path,
        kind: FileKind,
        *,
        thread_name: str,
        describe: Callable[[sqlite3.Error], str] = str,
    ) -> None:
        self.path = path
        self.where = str(path)
        self._kind = kind
        self._thread_name = thread_name
        self._describe = describe
        self._conn: sqlite3.Connection | None = None
        self._worker: ThreadPoolExecutor | None = None

    @property
    def is_open(self) -> bool:
        return self._worker is not None

    async def call(self, fn: Callable[..., _T], *args: object) -> _T:
        """`fn(*args)` on the worker thread; SQLite's and the OS's errors as `StoreError`."""
        if self._worker is None:
            raise StoreError(f"{self.where}: the {self._kind.name} is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.where}: {self._describe(exc)}") from exc
        except OSError as exc:
            raise StoreError(f"{self.where}: {exc}") from exc

    async def select(
        self, row: Callable[[tuple[Any, ...]], _T], query: str, *parameters: object
    ) -> list[_T]:
        """The rows `query` selects, each made a value by `row`, read on the worker thread."""

        def read() -> list[_T]:
            return [row(found) for found in self.db().execute(query, parameters)]

        return await self.call(read)

    def db(self) -> sqlite3.Connection:
        """The connection, for what runs on the worker thread."""
        if self._conn is None:
            raise StoreError(f"{self.where}: the {self._kind.name} is closed")
        return self._conn

    async def open(
        self,
        on_create: Callable[[sqlite3.Connection], None],
        then: Callable[[sqlite3.Connection], _T],
    ) -> _T:
        """Start the worker and open the file on it (created if missing, with `on_create`
        run in the transaction that lays out the schema); `then` reads what the caller
        needs before any other call, and its result is returned."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        try:
            return await self.call(self._open_sync, on_create, then)
        except BaseException:
            self._worker.shutdown(wait=False)
            self._worker = None
            raise

    async def close(self) -> None:
        """Close the connection and end the worker; calling it again does nothing."""
        if self._worker is None:
            return
        try:
            await self.call(self._close_sync)
        finally:
            self._worker.shutdown(wait=False)  # idle by now: nothing is left to run
            self._worker = None

    def _open_sync(
        self,
        on_create: Callable[[sqlite3.Connection], None],
        then: Callable[[sqlite3.Connection], _T],
    ) -> _T:
        if self.path.is_dir():
            raise StoreError(f"{self.where} is a directory, not a store file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=_LOCK_WAIT_S)
        try:
            # EXCLUSIVE must come before the first access, or the shared-memory index
            # and shared locks are already in use.
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.where}: SQLite refused WAL mode ({mode})")
            conn.execute("PRAGMA synchronous=FULL")
            self._check_or_create(conn, on_create)
            result = then(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return result

    def _check_or_create(
        self, conn: sqlite3.Connection, on_create: Callable[[sqlite3.Connection], None]
    ) -> None:
        kind = self._kind
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id == 0:
            if conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]:
                raise StoreError(f"{self.where} is a SQLite database but not {kind.described}")

            def create(conn: sqlite3.Connection) -> None:
                for statement in kind.schema:
                    conn.execute(statement)
                on_create(conn)
                conn.execute(f"PRAGMA application_id={kind.application_id}")
                conn.execute(f"PRAGMA user_version={kind.format}")

            in_transaction(conn, create)
            return
        if app_id != kind.application_id:
            raise StoreError(f"{self.where} is a SQLite database of another application")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != kind.format:
            raise StoreError(
                f"{self.where} has {kind.name} format {version}; "
                f"this m2mpay reads format {kind.format}"
            )

    def _close_sync(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()  # the last connection checkpoints the WAL into the main file


def in_transaction(
    conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T], begin: str = "BEGIN"
) -> _T:
    """`work(conn)` in one transaction: committed whole, or rolled back whole."""
    conn.execute(begin)
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result
