"""The node's durable memory: a write-ahead log of opaque records, snapshots and metadata.

`open_store(location)` picks the implementation from where the data lives:

- a path, or `sqlite:///absolute/path.sqlite3`: `SqliteStore` (the default, one file);
- `postgresql://user@host:port/db` (or `postgres://`): `PostgresStore`, where `namespace`
  keeps several nodes apart in one database;
- `memory:`: a fresh `MemoryStore`, for tests.

It returns the store unopened: `async with open_store(path) as store: ...`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from m2mpay.errors import StoreError
from m2mpay.store.base import Recovered, Snapshot, Store, WalRecord
from m2mpay.store.memory import MemoryDisk, MemoryStore
from m2mpay.store.postgres import PostgresStore
from m2mpay.store.sqlite import SqliteStore

__all__ = [
    "MemoryDisk",
    "MemoryStore",
    "PostgresStore",
    "Recovered",
    "Snapshot",
    "SqliteStore",
    "Store",
    "WalRecord",
    "open_store",
]


_SCHEMES = ("sqlite", "postgresql", "postgres", "memory")


def open_store(location: str | Path, *, namespace: str = "default") -> Store:
    """The store for `location` (a path or a URL), not yet opened."""
    if not isinstance(namespace, str) or not namespace:
        raise StoreError("a store namespace is a non-empty string")
    if isinstance(location, Path):
        return SqliteStore(location, namespace=namespace)
    if not isinstance(location, str) or not location.strip():
        raise StoreError("a store location is a path or a URL, not an empty string")
    if location in ("memory:", "memory://"):
        return MemoryStore()
    scheme, colon, rest = location.partition(":")
    scheme = scheme.lower()
    if colon and scheme in _SCHEMES and not rest.startswith("//"):
        # "sqlite:x.db" is a URL typed wrong far more often than a file named that way.
        raise StoreError(f"a store URL is {scheme}://…, not {location!r}")
    if "://" not in location:
        return SqliteStore(location, namespace=namespace)
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(location, namespace=namespace)
    if scheme == "sqlite":
        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise StoreError(
                f"a SQLite URL is sqlite:///absolute/path (three slashes), not {location!r}"
            )
        if parts.query or parts.fragment:
            raise StoreError(f"a SQLite URL takes no query or fragment: {location!r}")
        return SqliteStore(Path(unquote(parts.path)), namespace=namespace)
    raise StoreError(
        f"unsupported store URL scheme {scheme!r}: use a path, sqlite:///…, postgresql://…"
    )
