"""One suite, every `Store`: SQLite, PostgreSQL and the in-memory fake behave alike."""

from __future__ import annotations

import asyncio
import os

import pytest

from m2mpay.errors import StoreError
from m2mpay.store import Snapshot, Store, WalRecord
from tests.store.conftest import StoreMaker

MiB = 1024 * 1024


def record(seq: int, size: int = 200) -> bytes:
    """Deterministic content for a seq, so a test can tell every record apart."""
    stem = f"record {seq}:".encode()
    return (stem * (size // len(stem) + 1))[:size]


async def test_append_flush_load_round_trip(maker: StoreMaker) -> None:
    async with maker.make() as store:
        assert (store.durable_seq, store.pending_count) == (0, 0)
        recovered = await store.load()
        assert (recovered.snapshot, recovered.records, recovered.meta) == (None, [], {})
        seqs = [store.append(record(i)) for i in range(1, 6)]
        assert seqs == [1, 2, 3, 4, 5]
        assert (store.durable_seq, store.pending_count) == (0, 5)
        assert await store.flush() == 5
        assert (store.durable_seq, store.pending_count) == (5, 0)
        store.append(b"")  # an empty record is a record
        assert await store.flush() == 6
        recovered = await store.load()
    assert recovered.records == [*(WalRecord(i, record(i)) for i in range(1, 6)), WalRecord(6, b"")]
    assert recovered.last_seq == 6


async def test_seqs_continue_after_reopen(maker: StoreMaker) -> None:
    async with maker.make() as store:
        for i in range(1, 4):
            store.append(record(i))
        await store.flush()
    async with maker.make() as store:
        assert store.durable_seq == 3
        assert store.append(record(4)) == 4
    async with maker.make() as store:  # close flushed the pending record
        assert store.durable_seq == 4
        assert [r.seq for r in (await store.load()).records] == [1, 2, 3, 4]


async def test_flush_with_nothing_pending_commits_nothing(maker: StoreMaker) -> None:
    async with maker.make() as store:
        assert await store.flush() == 0
        store.append(b"x")
        await store.flush()
        commits = store.commit_count
        assert await store.flush() == 1
        assert store.commit_count == commits


async def test_snapshot_compacts_the_log(maker: StoreMaker) -> None:
    async with maker.make() as store:
        for i in range(1, 11):
            store.append(record(i))
        await store.flush()
        await store.save_snapshot(6, b"state after 6")
        recovered = await store.load()
        assert recovered.snapshot == Snapshot(6, b"state after 6")
        assert [r.seq for r in recovered.records] == [7, 8, 9, 10]
        # Records after the snapshot that are still buffered are flushed with it.
        store.append(record(11))
        store.append(record(12))
        await store.save_snapshot(11, b"state after 11")
        assert store.durable_seq == 12
        with pytest.raises(StoreError, match="outside"):
            await store.save_snapshot(9, b"older than the current one")
        with pytest.raises(StoreError, match="outside"):
            await store.save_snapshot(13, b"beyond the last record")
    async with maker.make() as store:
        recovered = await store.load()
        assert recovered.snapshot == Snapshot(11, b"state after 11")
        assert recovered.records == [WalRecord(12, record(12))]
        assert store.append(record(13)) == 13


async def test_snapshot_of_everything_keeps_the_seq(maker: StoreMaker) -> None:
    async with maker.make() as store:
        for i in range(1, 4):
            store.append(record(i))
        await store.save_snapshot(3, b"all of it")
        assert (await store.load()).records == []
    async with maker.make() as store:
        assert store.durable_seq == 3  # no record is left, the snapshot remembers
        recovered = await store.load()
        assert (recovered.snapshot, recovered.last_seq) == (Snapshot(3, b"all of it"), 3)
        assert store.append(b"next") == 4


async def test_meta_is_committed_with_the_flush(maker: StoreMaker) -> None:
    async with maker.make() as store:
        store.put_meta("tx:open", b"\x01" * 32)
        store.put_meta("tx:close", b"\x02" * 32)
        assert await store.get_meta("tx:open") == b"\x01" * 32  # reads its own writes
        before = store.commit_count
        store.append(b"opened")
        await store.flush()
        assert store.commit_count == before + 1  # records and meta in one transaction
        store.put_meta("tx:open", None)
        store.put_meta("tx:close", b"\x03")
        assert await store.get_meta("tx:open") is None
        await store.flush()
        store.put_meta("only-meta", b"")  # meta alone is worth a flush too
        await store.flush()
    async with maker.make() as store:
        assert await store.get_meta("tx:open") is None
        assert await store.get_meta("tx:close") == b"\x03"
        assert (await store.load()).meta == {"tx:close": b"\x03", "only-meta": b""}
        assert store.durable_seq == 1


async def test_concurrent_flushes_share_commits(maker: StoreMaker) -> None:
    async def appender(store: Store, worker: int) -> list[int]:
        seqs = []
        for round_ in range(10):
            seq = store.append(f"{worker}/{round_}".encode())
            durable = await store.flush()
            assert durable >= seq  # never returns before its record is durable
            seqs.append(seq)
        return seqs

    async with maker.make() as store:
        results = await asyncio.gather(*(appender(store, w) for w in range(100)))
        assert store.durable_seq == 1000
        assert store.pending_count == 0
        # 1000 flush calls; coalescing makes it about one commit per round.
        assert store.commit_count <= 100, store.commit_count
        recovered = await store.load()
    assert sorted(s for seqs in results for s in seqs) == list(range(1, 1001))
    by_seq = {r.seq: r.data for r in recovered.records}
    for worker, seqs in enumerate(results):
        assert [by_seq[s] for s in seqs] == [f"{worker}/{r}".encode() for r in range(10)]


async def test_cancelled_flush_does_not_cancel_the_commit(maker: StoreMaker) -> None:
    async with maker.make() as store:
        store.append(b"a")
        waiter = asyncio.ensure_future(store.flush())
        await asyncio.sleep(0)  # the commit has started
        waiter.cancel()
        store.append(b"b")
        assert await store.flush() == 2
    async with maker.make() as store:
        assert [r.data for r in (await store.load()).records] == [b"a", b"b"]


async def test_large_records(maker: StoreMaker) -> None:
    big = [os.urandom(MiB), os.urandom(MiB) + b"tail", os.urandom(3 * MiB)]
    async with maker.make() as store:
        for data in big:
            store.append(data)
        store.append(b"small")
        await store.flush()
        await store.save_snapshot(1, os.urandom(2 * MiB))
    async with maker.make() as store:
        recovered = await store.load()
    assert [r.data for r in recovered.records] == [*big[1:], b"small"]
    assert recovered.snapshot is not None
    assert len(recovered.snapshot.data) == 2 * MiB


async def test_a_store_that_is_not_open_refuses_use(maker: StoreMaker) -> None:
    store = maker.make()
    with pytest.raises(StoreError, match="not open"):
        store.append(b"early")
    async with store:
        store.append(b"x")
    await store.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        store.append(b"late")
    with pytest.raises(StoreError, match="closed"):
        store.put_meta("k", b"v")
    with pytest.raises(StoreError, match="closed"):
        await store.flush()
    with pytest.raises(StoreError, match="closed"):
        await store.load()
    with pytest.raises(StoreError, match="closed"):
        await store.save_snapshot(1, b"s")
    with pytest.raises(StoreError, match="closed"):
        await store.get_meta("k")
    with pytest.raises(StoreError, match="opened only once"):
        await store.open()


async def test_bad_arguments_are_refused(maker: StoreMaker) -> None:
    async with maker.make() as store:
        with pytest.raises(TypeError):
            store.append("text")  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="meta key"):
            store.put_meta("", b"v")
        with pytest.raises(TypeError):
            store.put_meta("k", "text")  # type: ignore[arg-type]
        buffer = bytearray(b"mutable")
        store.append(buffer)
        buffer[:] = b"changed"
        await store.flush()
        assert (await store.load()).records == [WalRecord(1, b"mutable")]


async def test_one_writer_per_location(maker: StoreMaker) -> None:
    async with maker.make():
        with pytest.raises(StoreError, match="in use"):
            async with maker.make():
                pass
    async with maker.make() as store:  # released on close
        assert store.durable_seq == 0


async def test_a_failed_commit_makes_the_store_unusable(
    maker: StoreMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_disk(*args: object) -> None:
        raise OSError("disk on fire")

    async with maker.make() as store:
        store.append(b"durable")
        await store.flush()
        store.append(b"lost")
        monkeypatch.setattr(store, "_write_batch", broken_disk)
        flushes = [store.flush() for _ in range(3)]
        for outcome in await asyncio.gather(*flushes, return_exceptions=True):
            assert isinstance(outcome, StoreError)
            assert "disk on fire" in str(outcome)
        with pytest.raises(StoreError, match="reopen"):
            store.append(b"after")
        with pytest.raises(StoreError, match="reopen"):
            await store.flush()
    async with maker.make() as store:  # the successor sees what was durable
        assert [r.data for r in (await store.load()).records] == [b"durable"]
        assert store.append(b"again") == 2
