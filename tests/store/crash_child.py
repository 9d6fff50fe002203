"""A process for `test_crash.py` to SIGKILL: it writes a store and says what is durable.

    python crash_child.py LOCATION NAMESPACE loop       # batches forever, one line per flush
    python crash_child.py LOCATION NAMESPACE unflushed  # 5 durable records, then 3 that are not

Record contents and batch sizes are functions of the seq (below), so the parent can check
every byte and every batch boundary without being told.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from m2mpay.store import open_store

SNAPSHOT_EVERY = 10  # batches


def content(seq: int) -> bytes:
    """The record with this seq: 100 B to ~3 kB, and 256 kB now and then (wider to tear)."""
    size = 256 * 1024 if seq % 97 == 0 else 100 + (seq * 7919) % 3000
    block = hashlib.sha256(seq.to_bytes(8, "big")).digest()
    return (block * (size // 32 + 1))[:size]


def batch_size(after: int) -> int:
    """How many records the batch that starts after durable seq `after` holds."""
    return 1 + (after * 2654435761) % 40


def snapshot_data(seq: int) -> bytes:
    return b"snapshot:%d" % seq


async def loop(location: str, namespace: str) -> None:
    store = open_store(location, namespace=namespace)
    await store.open()
    print(f"ready {store.durable_seq}", flush=True)
    batches = 0
    while True:
        start = store.durable_seq
        end = start + batch_size(start)
        for seq in range(start + 1, end + 1):
            assert store.append(content(seq)) == seq
        store.put_meta("last", str(end).encode())  # must land with the batch or not at all
        durable = await store.flush()
        print(durable, flush=True)
        batches += 1
        if batches % SNAPSHOT_EVERY == 0:
            await store.save_snapshot(durable, snapshot_data(durable))


async def unflushed(location: str, namespace: str) -> None:
    store = open_store(location, namespace=namespace)
    await store.open()
    for seq in range(1, 6):
        store.append(content(seq))
    store.put_meta("kept", b"yes")
    await store.flush()
    for seq in range(6, 9):
        store.append(content(seq))
    store.put_meta("lost", b"never flushed")
    store.put_meta("kept", None)
    print("ready", flush=True)
    await asyncio.sleep(3600)  # until killed


if __name__ == "__main__":
    location, namespace, mode = sys.argv[1:4]
    asyncio.run((loop if mode == "loop" else unflushed)(location, namespace))
