"""Fixtures for the store suite: a PostgreSQL server (started if it is not running) and a
factory that opens stores of every kind on one location, so a test can "restart" them.

PostgreSQL is reached at `$M2MPAY_TEST_POSTGRES` (default
`postgresql://postgres@127.0.0.1:5432/test`). Each session works in a fresh schema that it
drops at the end, and each test in its own namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

from m2mpay.store import MemoryDisk, MemoryStore, Store, open_store

PG_URL = os.environ.get("M2MPAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
KINDS = ("sqlite", "postgres", "memory")
DURABLE_KINDS = ("sqlite", "postgres")
_START_WAIT_S = 60.0


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


async def _try_connect(url: str) -> Exception | None:
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except Exception as exc:
        return exc
    await conn.close()
    return None


def _run(command: list[str], why: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        output = done.stderr.strip() or done.stdout.strip()
        pytest.fail(f"{why}, and `{' '.join(command)}` failed (exit {done.returncode}): {output}")


def start_local_cluster(why: str, cluster: str = "main") -> None:
    """Start a local Debian cluster, creating it (trust auth on loopback) if it is missing."""
    conf = Path("/etc/postgresql")
    versions = (
        sorted((p.name for p in conf.iterdir() if p.is_dir()), key=float) if conf.is_dir() else []
    )
    if not versions:
        installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not installed:
            pytest.fail(
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb);"
                " `make test` installs the Debian package `postgresql`"
            )
        versions = [installed[-1].parent.parent.name]
    version = versions[-1]
    if (conf / version / cluster).is_dir():
        _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"], why)
    else:
        # Trust on loopback and the socket, as the tests expect (a throwaway test server).
        _run(
            ["pg_createcluster", version, cluster, "--start", "--",
             "--auth-host=trust", "--auth-local=trust"],
            why,
        )  # fmt: skip


async def _ensure_server(url: str) -> None:
    admin = _with_database(url, "postgres")
    if (refused := await _try_connect(admin)) is not None:
        why = f"PostgreSQL at {admin} is not reachable ({refused})"
        host = urlsplit(url).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1", ""):
            pytest.fail(f"{why}, and a server on another host is not ours to start")
        start_local_cluster(why)
        deadline = time.monotonic() + _START_WAIT_S
        while (error := await _try_connect(admin)) is not None:
            if time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL was started but does not accept connections: {error}")
            await asyncio.sleep(0.2)
    database = urlsplit(url).path.lstrip("/")
    if database and await _try_connect(url) is not None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{database}"')
        except asyncpg.DuplicateDatabaseError:
            pass  # another session created it meanwhile
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def _schema(schema: str) -> AsyncIterator[str]:
    """A URL whose `search_path` is `schema`, made here and dropped at the end."""
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if urlsplit(PG_URL).query else "?"
        yield f"{PG_URL}{separator}search_path={schema}"
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A URL whose `search_path` is a schema of this session alone, dropped at the end."""
    await _ensure_server(PG_URL)
    async with _schema(f"m2mpay_store_test_{uuid.uuid4().hex[:12]}") as url:
        yield url


@pytest.fixture
async def postgres_schema_url(postgres_url: str) -> AsyncIterator[str]:
    """A URL whose `search_path` is a fresh schema of this test alone, for what keeps one
    store per schema (the stream store); dropped at the end."""
    del postgres_url  # the server runs
    async with _schema(f"m2mpay_test_{uuid.uuid4().hex[:16]}") as url:
        yield url


@dataclass
class StoreMaker:
    """Makes stores of one kind on one location; each `make()` is a "restart"."""

    kind: str
    location: str
    namespace: str
    disk: MemoryDisk

    def make(self, namespace: str | None = None) -> Store:
        if self.kind == "memory":
            return MemoryStore(self.disk)
        return open_store(self.location, namespace=namespace or self.namespace)


def unique_namespace() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


def _maker(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreMaker:
    namespace = unique_namespace()
    if kind == "postgres":
        location: str = request.getfixturevalue("postgres_url")
    elif kind == "sqlite":
        location = str(tmp_path / "node" / "store.sqlite3")
    else:
        location = "memory:"
    return StoreMaker(kind, location, namespace, MemoryDisk())


@pytest.fixture(params=KINDS)
def maker(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    """Every implementation of `Store`."""
    return _maker(request.param, tmp_path, request)


@pytest.fixture(params=DURABLE_KINDS)
def durable_maker(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    """The implementations that keep data across a process crash."""
    return _maker(request.param, tmp_path, request)
