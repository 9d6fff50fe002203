"""`StreamWriter`: it numbers, chains, seals and signs, returns a message once it is
durable, and after a crash or a failed append goes on with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from m2mpay.errors import ProvenanceError
from m2mpay.provenance import (
    AccessMode,
    MeterRecord,
    MeterUnit,
    NoteRecord,
    ProvenanceStream,
    SqliteStreamStore,
    StreamWriter,
    verify,
)
from tests.provenance import stream_crash_child
from tests.provenance.streams_kit import AUTHOR, OTHER, Clock, StoreMaker, records

CHILD = Path(stream_crash_child.__file__)
KILLS = 4


async def test_a_writer_reopened_on_its_store_goes_on_without_gap_or_duplicate(
    maker: StoreMaker,
) -> None:
    async with maker.open() as store:
        writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=Clock())
        first = await writer.append_many(records(4))
        assert [m.index for m in first] == [0, 1, 2, 3]
        assert await store.head(writer.stream_id) == first[-1]
        key = writer.key()
    async with maker.open() as store:
        again = await StreamWriter.reopen(store, AUTHOR, writer.stream_id, now_ms=Clock())
        assert again.head == first[-1]
        assert again.key() == key  # derived, not stored
        more = await again.append_many(records(3))
        assert [m.index for m in more] == [4, 5, 6]
        verified = (await ProvenanceStream.load(store, writer.stream_id)).verify(key)
        assert verified.ok, verified.problem
        assert verified.records == records(4) + records(3)


async def test_only_the_author_writes_and_two_writers_cannot_fork_a_stream(
    maker: StoreMaker,
) -> None:
    async with maker.open() as store:
        writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=Clock())
        with pytest.raises(ProvenanceError) as caught:
            await StreamWriter.reopen(store, OTHER, writer.stream_id)
        assert caught.value.code == "not_author"
        with pytest.raises(ProvenanceError) as caught:
            await StreamWriter.reopen(store, AUTHOR, bytes(32))
        assert caught.value.code == "unknown_stream"
        twin = await StreamWriter.reopen(store, AUTHOR, writer.stream_id, now_ms=Clock())
        await writer.append(NoteRecord("first"))
        with pytest.raises(ProvenanceError) as caught:
            await twin.append(NoteRecord("a second message at index 0"))
        assert caught.value.code == "conflict"
        # The refused writer learns where the stream is and continues it.
        await twin.append(NoteRecord("second"))
        verified = (await ProvenanceStream.load(store, writer.stream_id)).verify(writer.key())
        assert verified.records == [NoteRecord("first"), NoteRecord("second")]


async def test_timestamps_never_go_back_though_the_clock_does(maker: StoreMaker) -> None:
    clock = Clock(step=-1000)
    async with maker.open() as store:
        writer = await StreamWriter.create(
            store, AUTHOR, purpose="lamp", access=AccessMode.PUBLIC, now_ms=clock
        )
        written = await writer.append_many(records(3))
        assert len({m.timestamp_ms for m in written}) == 1
        assert (await ProvenanceStream.load(store, writer.stream_id)).verify().ok
        with pytest.raises(ProvenanceError, match="no key"):
            writer.key()


async def test_keys_belong_to_streams_of_subscribers_only(maker: StoreMaker) -> None:
    async with maker.open() as store:
        writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=Clock())
        with pytest.raises(ProvenanceError) as caught:
            await writer.rotate([])
        assert caught.value.code == "not_subscribers"


async def test_a_cancelled_append_is_either_kept_or_not_and_the_next_one_continues(
    maker: StoreMaker,
) -> None:
    async with maker.open() as store:
        writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=Clock())
        await writer.append(NoteRecord("kept"))
        task = asyncio.ensure_future(writer.append(NoteRecord("cancelled")))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for attempt in range(50):  # the commit may still be on its way to the disk
            try:
                await writer.append(NoteRecord("after"))
                break
            except ProvenanceError:
                await asyncio.sleep(0.01 * attempt)
        verified = (await ProvenanceStream.load(store, writer.stream_id)).verify(writer.key())
        assert verified.ok, verified.problem
        texts = [r.text for r in verified.records if isinstance(r, NoteRecord)]
        assert texts in (["kept", "after"], ["kept", "cancelled", "after"])


async def _spawn(path: Path, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    assert process.stderr is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    if not line:
        pytest.fail(f"the writer died: {(await process.stderr.read()).decode()}")
    return line.decode().strip()


async def _kill(process: asyncio.subprocess.Process) -> list[int]:
    """SIGKILL the writer; the indexes it had said were durable and we had not read."""
    assert process.stdout is not None
    process.send_signal(signal.SIGKILL)
    rest = await process.stdout.read()
    await process.wait()
    assert process.returncode == -signal.SIGKILL
    return [int(line) for line in rest.decode().split("\n")[:-1]]  # the last one may be cut


@pytest.mark.slow
async def test_sigkill_while_writing_leaves_a_stream_that_verifies_and_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "streams.sqlite3"
    process = await _spawn(path)
    stream_id = bytes.fromhex((await _line(process)).split()[1])
    acknowledged = -1
    for kill in range(KILLS):
        for _ in range(5 + 7 * kill):  # kill at a different moment each time
            acknowledged = int(await _line(process))
        acknowledged = max([acknowledged, *await _kill(process)])
        async with SqliteStreamStore(path) as store:
            stream = await ProvenanceStream.load(store, stream_id)
            key = (await StreamWriter.reopen(store, AUTHOR, stream_id)).key()
        # Every message the writer returned is durable; at most the one in flight is more.
        assert acknowledged <= len(stream.messages) - 1 <= acknowledged + 1
        verified = stream.verify(key)
        assert verified.ok, verified.problem
        totals = [r.total for r in verified.records if isinstance(r, MeterRecord)]
        assert totals == list(range(1, len(stream.messages) + 1))
        process = await _spawn(path, stream_id.hex())
        first = int(await _line(process))
        assert first == len(stream.messages)  # the next index: no gap, no duplicate
        acknowledged = first
    process.send_signal(signal.SIGKILL)
    await process.wait()
    async with SqliteStreamStore(path) as store:
        final = await ProvenanceStream.load(store, stream_id)
    assert verify(final.root, final.messages, key).ok
    assert all(
        isinstance(r, MeterRecord) and r.unit is MeterUnit.WH for r in final.verify(key).records
    )
