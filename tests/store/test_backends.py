"""What only one backend can get wrong: URLs, foreign or damaged files, shared databases."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from m2mpay.errors import StoreError
from m2mpay.store import MemoryStore, PostgresStore, SqliteStore, WalRecord, open_store, postgres
from tests.store.conftest import PG_URL, unique_namespace

# -- open_store ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "kind", "where"),
    [
        (Path("/data/node.sqlite3"), SqliteStore, "/data/node.sqlite3"),
        ("/data/node.sqlite3", SqliteStore, "/data/node.sqlite3"),
        ("relative/node.sqlite3", SqliteStore, "relative/node.sqlite3"),
        ("sqlite:///data/my%20node.sqlite3", SqliteStore, "/data/my node.sqlite3"),
        ("sqlite://localhost/data/node.sqlite3", SqliteStore, "/data/node.sqlite3"),
        ("postgresql://hub@db.local:5433/m2m", PostgresStore, "postgresql://hub@db.local:5433/m2m"),
        ("postgres://hub@db.local/m2m", PostgresStore, "postgres://hub@db.local/m2m"),
        ("memory:", MemoryStore, "memory"),
    ],
)
def test_open_store_picks_the_backend(location: str | Path, kind: type, where: str) -> None:
    store = open_store(location, namespace="n1")
    assert isinstance(store, kind)
    assert store.location.startswith(where)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("", "empty"),
        ("mysql://db/x", "unsupported store URL scheme 'mysql'"),
        ("sqlite://data/node.sqlite3", "three slashes"),
        ("sqlite:///data/node.sqlite3?mode=ro", "no query"),
        ("sqlite:node.sqlite3", "sqlite://"),
        ("postgresql:hub@db/m2m", "postgresql://"),
    ],
)
def test_open_store_refuses_unusable_locations(location: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(location)


def test_open_store_refuses_an_empty_namespace() -> None:
    with pytest.raises(StoreError, match="namespace"):
        open_store("x.sqlite3", namespace="")


# -- SQLite ----------------------------------------------------------------------------


async def test_sqlite_refuses_files_that_are_not_its_own(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a SQLite database"):
        await SqliteStore(garbage).open()

    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="not an m2mpay store"):
        await SqliteStore(foreign).open()

    with pytest.raises(StoreError, match="is a directory"):
        await SqliteStore(tmp_path).open()


async def test_sqlite_file_keeps_its_namespace_and_format(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "node.sqlite3"  # parents are created
    async with SqliteStore(path, namespace="alice"):
        pass
    with pytest.raises(StoreError, match="belongs to namespace 'alice', not 'bob'"):
        await SqliteStore(path, namespace="bob").open()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="format 99"):
        await SqliteStore(path, namespace="alice").open()


async def test_sqlite_detects_a_hole_in_the_log(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"
    async with SqliteStore(path) as store:
        for i in range(5):
            store.append(b"%d" % i)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM wal WHERE seq = 3")
    conn.close()
    async with SqliteStore(path) as store:
        with pytest.raises(StoreError, match="expected record 3, found 4"):
            await store.load()


async def test_sqlite_runs_on_one_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits and reads block a worker thread, always the same one, never the loop's."""
    threads: set[int] = set()
    store = SqliteStore(tmp_path / "node.sqlite3")
    real_transaction, real_read = store._in_transaction, store._read_all_sync

    def spy_transaction(work: Callable[[sqlite3.Connection], None]) -> None:
        threads.add(threading.get_ident())
        real_transaction(work)

    def spy_read() -> object:
        threads.add(threading.get_ident())
        return real_read()

    monkeypatch.setattr(store, "_in_transaction", spy_transaction)
    monkeypatch.setattr(store, "_read_all_sync", spy_read)
    async with store:
        for _ in range(3):
            store.append(b"x")
            await store.flush()
        await store.save_snapshot(2, b"s")
        await store.load()
    assert len(threads) == 1
    assert threading.get_ident() not in threads


# -- PostgreSQL ------------------------------------------------------------------------


async def test_postgres_namespaces_are_isolated(postgres_url: str) -> None:
    alice = PostgresStore(postgres_url, namespace=unique_namespace())
    bob = PostgresStore(postgres_url, namespace=unique_namespace())
    async with alice, bob:  # both open at once in one database
        alice.append(b"a1")
        alice.append(b"a2")
        alice.put_meta("who", b"alice")
        bob.append(b"b1")
        bob.put_meta("who", b"bob")
        await asyncio.gather(alice.flush(), bob.flush())
        await alice.save_snapshot(2, b"alice state")
        bob.append(b"b2")
        await bob.flush()
        from_alice, from_bob = await alice.load(), await bob.load()
    assert (from_alice.snapshot is not None, from_alice.records) == (True, [])
    assert from_alice.meta == {"who": b"alice"}
    assert from_bob.snapshot is None
    assert from_bob.records == [WalRecord(1, b"b1"), WalRecord(2, b"b2")]
    assert from_bob.meta == {"who": b"bob"}


async def test_postgres_creates_its_tables_once_under_concurrent_opens(postgres_url: str) -> None:
    schema = f"m2mpay_fresh_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        url = postgres_url.rsplit("search_path=", 1)[0] + f"search_path={schema}"
        stores = [PostgresStore(url, namespace=f"n{i}") for i in range(6)]
        await asyncio.gather(*(s.open() for s in stores))
        for i, store in enumerate(stores):
            store.append(b"%d" % i)
        await asyncio.gather(*(s.close() for s in stores))
        tables = await admin.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
        assert sorted(r[0] for r in tables) == ["m2mpay_meta", "m2mpay_snapshot", "m2mpay_wal"]
        assert await admin.fetchval(f"SELECT count(*) FROM {schema}.m2mpay_wal") == 6
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def test_postgres_splits_huge_batches_in_one_transaction(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "_CHUNK_BYTES", 1000)  # 64 MiB in production
    records = [bytes([i]) * 300 for i in range(10)]
    async with PostgresStore(postgres_url, namespace=unique_namespace()) as store:
        store.append(b"first")
        await store.flush()
        for data in records:
            store.append(data)
        store.put_meta("k", b"v")
        commits = store.commit_count
        assert await store.flush() == 11
        assert store.commit_count == commits + 1
        recovered = await store.load()
    assert recovered.records == [WalRecord(1, b"first")] + [
        WalRecord(i + 2, data) for i, data in enumerate(records)
    ]
    assert recovered.meta == {"k": b"v"}


async def test_postgres_unreachable_server_is_a_clear_error() -> None:
    # Port 1 on loopback refuses at once; the password must not leak into the message.
    store = open_store("postgresql://hub:s3cret@127.0.0.1:1/m2m", namespace="n")
    with pytest.raises(StoreError, match=r"cannot connect to postgresql://hub:\*\*\*@") as caught:
        await store.open()
    assert "s3cret" not in str(caught.value)


async def test_postgres_insists_on_durable_commits(postgres_url: str) -> None:
    async with PostgresStore(
        postgres_url + "&synchronous_commit=off", namespace=unique_namespace()
    ) as store:
        assert await store._db().fetchval("SHOW synchronous_commit") == "on"


async def test_postgres_detects_a_hole_in_the_log(postgres_url: str) -> None:
    namespace = unique_namespace()
    async with PostgresStore(postgres_url, namespace=namespace) as store:
        for i in range(5):
            store.append(b"%d" % i)
        await store.flush()
        await store._db().execute(
            "DELETE FROM m2mpay_wal WHERE namespace = $1 AND seq = 2", namespace
        )
        with pytest.raises(StoreError, match="expected record 2, found 3"):
            await store.load()
