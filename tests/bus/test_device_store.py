"""The device store boundary: one suite for the real store (SQLite) and the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from m2mpay.bus.sqlite import SqliteDeviceStore
from m2mpay.bus.store import (
    CommandRecord,
    DeviceRecord,
    DeviceStore,
    MemoryDeviceStore,
    ServiceRecord,
)
from m2mpay.crypto import Address
from m2mpay.errors import StoreError
from m2mpay.provenance.records import NewBatch, TelemetryRecord
from m2mpay.stream import ServiceKind

LAMP = Address(bytes([1]) * 20)
METER = Address(bytes([2]) * 20)
ASSET = Address(bytes([3]) * 20)
LIGHT = ServiceRecord("light", "s", 10**15, ASSET, ServiceKind.ACTUATION)
SESSION = bytes([5]) * 32


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DeviceStore]:
    impl: DeviceStore = (
        SqliteDeviceStore(tmp_path / "devices.sqlite3")
        if request.param == "sqlite"
        else MemoryDeviceStore()
    )
    async with impl:
        yield impl


def _command(n: int, *, device: Address = LAMP, session: bytes = SESSION) -> CommandRecord:
    return CommandRecord(bytes([n]) * 16, device, session, "light", "on", n, 1, n)


def _record(seq: int, device: Address = LAMP, at_ms: int | None = None) -> TelemetryRecord:
    return TelemetryRecord(device, seq, at_ms or 1000 * seq, 5, b'{"n":%d}' % seq)


async def test_devices_are_saved_and_replaced(store: DeviceStore) -> None:
    assert await store.load_devices() == []
    await store.save_device(DeviceRecord(LAMP, "lamp", (LIGHT,), 1))
    heat = ServiceRecord("heat", "Wh", 7, ASSET, ServiceKind.ENERGY)
    await store.save_device(DeviceRecord(LAMP, "lamp 2", (LIGHT, heat), 2))
    assert await store.load_devices() == [DeviceRecord(LAMP, "lamp 2", (LIGHT, heat), 2)]


async def test_a_command_supersedes_the_pending_ones_of_its_session(store: DeviceStore) -> None:
    await store.save_command(_command(1))
    await store.save_command(_command(2, session=bytes(32)))
    await store.save_command(_command(3, device=METER))
    await store.save_command(_command(4))
    pending = await store.pending_commands(LAMP)
    assert [c.id[0] for c in pending] == [2, 4]  # oldest first, 1 superseded by 4
    assert not await store.settle_command(LAMP, _command(1).id, True)  # superseded
    assert not await store.settle_command(METER, _command(4).id, True)  # not its command
    assert await store.settle_command(LAMP, _command(4).id, False)  # refused is settled too
    assert not await store.settle_command(LAMP, _command(4).id, True)  # only once
    assert [c.id[0] for c in await store.pending_commands(LAMP)] == [2]
    assert await store.pending_commands(METER) == [_command(3, device=METER)]


async def test_telemetry_grows_by_seq_and_is_queried_by_time(store: DeviceStore) -> None:
    for seq in (1, 2, 3):
        assert await store.add_telemetry(_record(seq))
    assert not await store.add_telemetry(_record(3))  # again
    assert not await store.add_telemetry(_record(2))  # older
    assert await store.add_telemetry(_record(1, METER))
    assert await store.last_telemetry_seq(LAMP) == 3
    assert await store.last_telemetry_seq(Address(bytes(20))) == 0
    assert [r.seq for r in await store.telemetry(LAMP)] == [1, 2, 3]
    assert [r.seq for r in await store.telemetry(LAMP, since_ms=2000)] == [2, 3]
    assert [r.seq for r in await store.telemetry(LAMP, after_seq=1, limit=1)] == [2]
    assert (await store.telemetry(LAMP))[0] == _record(1)


async def test_batches_take_their_records_and_are_anchored(store: DeviceStore) -> None:
    for seq in (1, 2, 3):
        await store.add_telemetry(_record(seq))
    await store.add_telemetry(_record(1, METER))
    waiting = await store.unbatched(10)
    assert [(r.device, r.seq) for r in waiting] == [(LAMP, 1), (LAMP, 2), (LAMP, 3), (METER, 1)]
    first, second = await store.create_batches(
        [NewBatch(LAMP, b"r" * 32, (1, 2), 9, 40), NewBatch(METER, b"s" * 32, (1,), 9, 40)]
    )
    assert (first.first_seq, first.last_seq, first.count, first.anchored) == (1, 2, 2, False)
    assert [(r.device, r.seq) for r in await store.unbatched(10)] == [(LAMP, 3)]
    assert [r.seq for r in await store.batch_records(first.id)] == [1, 2]
    assert all(r.batch == first.id for r in await store.batch_records(first.id))
    assert await store.unanchored_batches() == [first, second]
    await store.mark_anchored([first.id, second.id], b"t" * 32, 41, 30_000)
    assert await store.unanchored_batches() == []
    anchored = await store.batch(first.id)
    assert anchored is not None
    assert (anchored.tx_hash, anchored.block_number, anchored.gas_used) == (b"t" * 32, 41, 30_000)
    assert await store.batch(999) is None


async def test_sqlite_keeps_everything_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "devices.sqlite3"
    async with SqliteDeviceStore(path) as store:
        await store.save_device(DeviceRecord(LAMP, "lamp", (LIGHT,), 1))
        await store.save_command(_command(1))
        await store.add_telemetry(_record(1))
        (batch,) = await store.create_batches([NewBatch(LAMP, b"r" * 32, (1,), 9, 40)])
    async with SqliteDeviceStore(path) as store:
        assert await store.load_devices() == [DeviceRecord(LAMP, "lamp", (LIGHT,), 1)]
        assert await store.pending_commands(LAMP) == [_command(1)]
        assert await store.unanchored_batches() == [batch]


async def test_sqlite_refuses_a_second_writer_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "devices.sqlite3"
    async with SqliteDeviceStore(path):
        with pytest.raises(StoreError):
            async with SqliteDeviceStore(path) as second:
                await second.load_devices()
    foreign = tmp_path / "other.sqlite3"
    import sqlite3

    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a device store"):
        await SqliteDeviceStore(foreign).open()
    with pytest.raises(StoreError, match="closed"):
        await SqliteDeviceStore(path).load_devices()
