"""The durable engine on its own, with a counting machine: log, then act, and
`durable()` resolving only once what was handled is on disk and performed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import orjson

from m2mpay.node.engine import DurableEngine
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
