"""Flush latency and records/s of each durable store (a measurement, not a test).

    .venv/bin/python tests/store/bench_store.py [postgresql://postgres@127.0.0.1:5432/test]

For batch sizes 1, 10, 100 and 1000 records of 200 bytes: append a batch, flush, repeat.
Then many concurrent producers that each append one record and await its flush, which is
what a busy node does: group commit decides how many records share one transaction.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from m2mpay.store import Store, open_store

RECORD = 200
BATCHES = (1, 10, 100, 1000)
PRODUCERS = (100, 1000)


async def batches(store: Store, size: int) -> str:
    data = os.urandom(RECORD)
    rounds = max(30, min(2000, 20_000 // size))
    latencies = []
    for _ in range(rounds):
        for _ in range(size):
            store.append(data)
        started = time.perf_counter()
        await store.flush()
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]
    rate = size * rounds / sum(latencies)
    return f"batch {size:5}: p50 {p50 * 1e3:7.3f} ms  p99 {p99 * 1e3:7.3f} ms  {rate:10,.0f} rec/s"


async def producers(store: Store, count: int, seconds: float = 2.0) -> str:
    data = os.urandom(RECORD)
    stop = time.perf_counter() + seconds
    commits = store.commit_count

    async def one() -> int:
        done = 0
        while time.perf_counter() < stop:
            store.append(data)
            await store.flush()
            done += 1
        return done

    started = time.perf_counter()
    total = sum(await asyncio.gather(*(one() for _ in range(count))))
    elapsed = time.perf_counter() - started
    per_commit = total / max(1, store.commit_count - commits)
    return (
        f"{count:4} producers: {total / elapsed:10,.0f} rec/s acknowledged,"
        f" {per_commit:6.1f} records per commit"
    )


async def measure(name: str, store: Store) -> None:
    async with store:
        print(name)
        for size in BATCHES:
            print("  " + await batches(store, size))
        for count in PRODUCERS:
            print("  " + await producers(store, count))


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await measure("SQLite (WAL, synchronous=FULL)", open_store(Path(tmp) / "bench.sqlite3"))
    url = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"m2mpay_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in url else "?"
        store = open_store(f"{url}{separator}search_path={schema}", namespace="bench")
        await measure("PostgreSQL (one statement per flush)", store)
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
