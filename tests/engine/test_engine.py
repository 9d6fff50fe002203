"""The durable engine on its own, with a counting machine: log, then act, and
`durable()` resolving only once what was handled is on disk and performed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import orjson
import pytest

from m2mpay.engine.durable import DurableEngine, EngineFailed
from m2mpay.errors import StoreError
from m2mpay.store import MemoryStore
from m2mpay.store.memory import MemoryDisk


class Counter:
    """Adds each input to a running total per key; its output is the new total."""

    def key(self, inp: tuple[str, int]) -> str:
        return inp[0]

    def transition(self, state: int | None, inp: tuple[str, int]) -> tuple[int, tuple[int, ...]]:
        total = (state or 0) + inp[1]
        return total, (total,)

    def is_refusal(self, before: int | None, after: int | None, outputs: tuple[int, ...]) -> bool:
        return False

    def encode_record(self, inp: tuple[str, int], outputs: tuple[int, ...]) -> bytes:
        return orjson.dumps([inp[0], inp[1]])

    def decode_record(self, data: bytes) -> tuple[str, int]:
        key, amount = orjson.loads(data)
        return key, amount

    def encode_snapshot(self, states: Mapping[str, int]) -> bytes:
        return orjson.dumps(dict(states))

    def decode_snapshot(self, data: bytes) -> dict[str, int]:
        return dict(orjson.loads(data))


async def test_durable_resolves_after_the_flush_and_the_outputs_it_covers() -> None:
    disk = MemoryDisk()
    performed: list[int] = []

    async def perform(outputs: list[int]) -> None:
        performed.extend(outputs)

    store = MemoryStore(disk)
    await store.open()
    engine: DurableEngine[str, int, tuple[str, int], int] = DurableEngine(
        Counter(), store, perform, on_refusal=lambda _: None
    )
    await engine.recover()
    runner = asyncio.ensure_future(engine.run())
    try:
        assert engine.durable().done()  # nothing handled: nothing to wait for
        for amount in (1, 2, 3):
            engine.handle(("a", amount))
        durable = engine.durable()
        assert not durable.done()
        assert not disk.records  # logged in memory only: a crash now loses all three
        assert performed == []  # and nothing was acted on
        await asyncio.wait_for(durable, 5)
        assert len(disk.records) == 3
        assert performed == [1, 3, 6]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await store.close()


class WatchedPerform:
    """A `perform` that checks, at the moment it runs, that the record which produced
    each output is already on the disk: an output performed before its flush is exactly
    what a crash would turn into an action with no record of why."""

    def __init__(self, disk: MemoryDisk, producer: Mapping[int, int]) -> None:
        self.disk = disk
        self.producer = producer  # output -> seq of the record that produced it
        self.performed: list[int] = []
        self.early: list[int] = []

    async def __call__(self, outputs: list[int]) -> None:
        for output in outputs:
            if self.producer[output] not in self.disk.records:
                self.early.append(output)
        self.performed.extend(outputs)


class GatedStore(MemoryStore):
    """A `MemoryStore` whose writes start when the test says: a flush held open while
    the test handles more inputs, or failing as a disk that went away."""

    def __init__(self, disk: MemoryDisk) -> None:
        super().__init__(disk)
        self.writing = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.broken = False

    async def _write_batch(
        self, first_seq: int, records: Sequence[bytes], meta: dict[str, bytes | None]
    ) -> None:
        self.writing.set()
        await self.release.wait()
        if self.broken:
            raise StoreError("the disk went away")
        await super()._write_batch(first_seq, records, meta)


async def _started(
    perform: WatchedPerform, disk: MemoryDisk
) -> tuple[DurableEngine[str, int, tuple[str, int], int], GatedStore, asyncio.Future[None]]:
    store = GatedStore(disk)
    await store.open()
    engine: DurableEngine[str, int, tuple[str, int], int] = DurableEngine(
        Counter(), store, perform, on_refusal=lambda _: None
    )
    await engine.recover()
    return engine, store, asyncio.ensure_future(engine.run())


async def test_every_output_is_performed_only_after_its_record_is_on_disk() -> None:
    disk = MemoryDisk()
    # Powers of two make every running total name the one input that produced it.
    amounts = (1, 2, 4, 8, 16)
    totals = [sum(amounts[: i + 1]) for i in range(len(amounts))]
    perform = WatchedPerform(disk, {total: seq for seq, total in enumerate(totals, 1)})
    engine, store, runner = await _started(perform, disk)
    try:
        for amount in amounts:
            engine.handle(("a", amount))
            await asyncio.sleep(0)  # let the committer start a flush mid-way
        await asyncio.wait_for(engine.durable(), 5)
        assert perform.performed == totals
        assert perform.early == []
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await store.close()


async def test_inputs_handled_during_a_flush_wait_for_the_next_one() -> None:
    """Group commit pipelines: a flush already under way covers only what was appended
    before it began, so what arrives meanwhile must not ride on its completion."""
    disk = MemoryDisk()
    perform = WatchedPerform(disk, {1: 1, 3: 2, 7: 3})
    engine, store, runner = await _started(perform, disk)
    try:
        store.release.clear()
        engine.handle(("a", 1))
        engine.handle(("a", 2))
        await asyncio.wait_for(store.writing.wait(), 5)
        engine.handle(("a", 4))
        # One late input: `durable()` now waits for seq 3, one past what the flush
        # under way covers, the closest a waiter can come to being released early.
        everything = engine.durable()
        store.release.set()
        await asyncio.wait_for(everything, 5)
        assert perform.performed == [1, 3, 7]
        assert perform.early == []
        assert store.commit_count == 2  # the late input really took a flush of its own
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await store.close()


async def test_a_failed_flush_performs_nothing_and_fails_the_waiters() -> None:
    disk = MemoryDisk()
    perform = WatchedPerform(disk, {5: 1})
    engine, store, runner = await _started(perform, disk)
    try:
        store.broken = True
        engine.handle(("a", 5))
        durable = engine.durable()
        with pytest.raises(EngineFailed):
            await asyncio.wait_for(durable, 5)
        assert perform.performed == []
        with pytest.raises(EngineFailed):
            engine.handle(("a", 1))
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
