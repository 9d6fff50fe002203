"""SIGKILL at any moment loses nothing that a flush acknowledged, and tears no batch."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from pathlib import Path

import pytest

from m2mpay.store import Recovered
from tests.store import crash_child
from tests.store.conftest import StoreMaker

CHILD = Path(crash_child.__file__)
KILLS = 10


async def _spawn(maker: StoreMaker, mode: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        maker.location,
        maker.namespace,
        mode,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _first_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    assert process.stderr is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    if not line:
        pytest.fail(f"the child died: {(await process.stderr.read()).decode()}")
    return line.decode().strip()


async def _kill(process: asyncio.subprocess.Process) -> list[str]:
    """SIGKILL the child and return every complete line it had printed."""
    assert process.stdout is not None
    process.send_signal(signal.SIGKILL)
    rest = await process.stdout.read()
    await process.wait()
    assert process.returncode == -signal.SIGKILL
    return rest.decode().split("\n")[:-1]  # a last line without newline was cut short


def _boundaries(upto: int) -> set[int]:
    """Every durable seq the child can leave behind: the ends of its batches."""
    ends, end = {0}, 0
    while end <= upto:
        end += crash_child.batch_size(end)
        ends.add(end)
    return ends


def _check(recovered: Recovered, durable_seq: int, acknowledged: int) -> None:
    assert durable_seq >= acknowledged, "a flushed batch was lost"
    assert durable_seq in _boundaries(durable_seq), f"a torn batch: durable seq {durable_seq}"
    assert recovered.last_seq == durable_seq
    if recovered.snapshot is not None:
        assert recovered.snapshot.data == crash_child.snapshot_data(recovered.snapshot.seq)
    for rec in recovered.records:  # load() already checked that seqs are contiguous
        assert rec.data == crash_child.content(rec.seq), f"record {rec.seq} differs"
    expected_meta = {"last": str(durable_seq).encode()} if durable_seq else {}
    assert recovered.meta == expected_meta, "meta and records were not committed together"


async def test_sigkill_at_random_moments(durable_maker: StoreMaker) -> None:
    rng = random.Random()
    acknowledged = 0
    for _ in range(KILLS):
        process = await _spawn(durable_maker, "loop")
        try:
            assert await _first_line(process) == f"ready {acknowledged}"
            assert process.stdout is not None
            for _ in range(rng.randint(1, 40)):
                await process.stdout.readline()
            await asyncio.sleep(rng.random() * 0.005)
        finally:
            lines = await _kill(process)
        acknowledged = max([acknowledged, *(int(x) for x in lines if x.isdigit())])
        async with durable_maker.make() as store:
            recovered = await store.load()
            _check(recovered, store.durable_seq, acknowledged)
        acknowledged = store.durable_seq  # the next child starts from here
    assert acknowledged > 0


async def test_unflushed_records_vanish_with_the_process(durable_maker: StoreMaker) -> None:
    process = await _spawn(durable_maker, "unflushed")
    try:
        assert await _first_line(process) == "ready"
    finally:
        await _kill(process)
    async with durable_maker.make() as store:
        assert store.durable_seq == 5
        recovered = await store.load()
        assert [r.data for r in recovered.records] == [crash_child.content(s) for s in range(1, 6)]
        assert recovered.meta == {"kept": b"yes"}
        assert store.append(b"the next one") == 6  # the lost seqs were never acknowledged
