"""`EngineHost`, the base of the node and the session manager, on a counting machine:
inputs are refused before start and after stop, a store that fails makes the host
refuse every later input (it fails closed), and a host that failed still releases
its store when stopped."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.engine import EngineHost
from m2mpay.errors import M2MPayError, StoreError, StreamError
from m2mpay.store import MemoryStore
from m2mpay.store.memory import MemoryDisk
from tests.engine.test_engine import Counter, GatedStore


class CountingHost(EngineHost[str, int, tuple[str, int], int]):
    _what = "counter"

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(Counter(), store, snapshot_every=1_000)
        self.performed: list[int] = []
        self.changes: list[tuple[str, int]] = []
        self.ticks = 0

    def _refusal(self, code: str, message: str) -> M2MPayError:
        return StreamError(code, message)

    async def _perform(self, outputs: list[int]) -> None:
        self.performed.extend(outputs)

    def _perform_refusal(self, outputs: tuple[int, ...]) -> None:
        pass

    def _on_change(self, key: str, state: int) -> None:
        self.changes.append((key, state))

    async def start(self) -> None:
        await self._open_engine()
        self._run_engine()
        self._spawn(self._every(0.01, self._tick))

    async def _tick(self) -> None:
        self.ticks += 1

    async def stop(self) -> None:
        if await self._stop_engine():
            await self._close_store()

    def add(self, key: str, amount: int) -> tuple[int, ...]:
        return self._handle((key, amount))


async def test_a_host_takes_inputs_only_while_it_runs_and_ticks_meanwhile() -> None:
    disk = MemoryDisk()
    host = CountingHost(MemoryStore(disk))
    with pytest.raises(StreamError, match="the counter is not running") as early:
        host.add("a", 1)
    assert early.value.code == "not_running"
    async with host:
        assert host.add("a", 2) == (2,)
        assert host.add("a", 3) == (5,)
        await asyncio.wait_for(host._engine.durable(), 5)
        await asyncio.sleep(0.05)
        assert host.ticks >= 2
        assert host.performed == [2, 5]
        assert host.changes == [("a", 2), ("a", 5)]
    with pytest.raises(StreamError) as late:
        host.add("a", 1)
    assert late.value.code == "not_running"
    # Stopped after draining what was handled, into a snapshot.
    assert disk.snapshot is not None
    assert disk.snapshot.seq == 2
    # A new host on the same disk recovers the state by replay (or snapshot).
    again = CountingHost(MemoryStore(disk))
    async with again:
        assert again.add("a", 1) == (6,)


async def test_a_store_that_fails_makes_the_host_refuse_everything_after() -> None:
    store = GatedStore(MemoryDisk())
    host = CountingHost(store)
    await host.start()
    store.broken = True
    host.add("a", 1)
    # The engine's committer dies on the failed flush; the host fails closed.
    for _ in range(200):
        if host._failure is not None:
            break
        await asyncio.sleep(0.01)
    assert isinstance(host._failure, StoreError)
    with pytest.raises(StreamError, match="the counter stopped after a failure") as refused:
        host.add("a", 1)
    assert refused.value.code == "failed"
    assert host.performed == []  # nothing unlogged was acted on
    await host.stop()
    # Even after a failure, stopping releases the store (a second open would refuse).
    assert not store._attached


async def test_a_recovered_host_sees_each_state_change_and_waits_end_in_its_refusals() -> None:
    disk = MemoryDisk()
    async with CountingHost(MemoryStore(disk)) as host:
        host.add("a", 2)
        host.add("b", 3)
    again = CountingHost(MemoryStore(disk))
    async with again:
        # Recovery tells the host each state as if it had just changed.
        assert sorted(again.changes) == [("a", 2), ("b", 3)]
        assert await again._wait("a", lambda total: total == 2, 1) == 2
        with pytest.raises(StreamError, match=r"state still unknown after 0\.05 s") as late:
            await again._wait("a", lambda total: total > 2, 0.05)
        assert late.value.code == "timeout"
        again._fail(StoreError("the disk is gone"))
        with pytest.raises(StreamError, match="the disk is gone") as failed:
            await again._wait("a", lambda total: total > 2, 5)
        assert failed.value.code == "failed"
