"""`SqliteDeviceStore`: the device bus's store in one SQLite file of the data dir.

Same durability as the node's store, through the same `SqliteFile`: WAL journal,
`synchronous=FULL` (a write returns once fsynced), one transaction per write, an
exclusive lock for the connection's life so a second process cannot interleave, and one
worker thread that owns the connection so the event loop never waits on a disk.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from m2mpay.bus.store import (
    CommandRecord,
    CommandState,
    DeviceRecord,
    DeviceStore,
    ServiceRecord,
)
from m2mpay.crypto import Address
from m2mpay.provenance.records import BatchRecord, NewBatch, TelemetryRecord
from m2mpay.store.sqlite_file import FileKind, SqliteFile, in_transaction

__all__ = ["SqliteDeviceStore"]

_T = TypeVar("_T")

# STRICT tables: a value of the wrong type is refused when written, never read back.
_SCHEMA: Final = (
    "CREATE TABLE device (address BLOB PRIMARY KEY, name TEXT NOT NULL,"
    " services TEXT NOT NULL, registered_ms INTEGER NOT NULL) STRICT, WITHOUT ROWID",
    "CREATE TABLE command (n INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
    " device BLOB NOT NULL, session BLOB NOT NULL, service TEXT NOT NULL,"
    " action TEXT NOT NULL, until_units INTEGER NOT NULL, units INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, state TEXT NOT NULL) STRICT",
    "CREATE INDEX command_pending ON command (device, session) WHERE state = 'pending'",
    "CREATE TABLE telemetry (device BLOB NOT NULL, seq INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, data BLOB NOT NULL,"
    " batch INTEGER, PRIMARY KEY (device, seq)) STRICT, WITHOUT ROWID",
    "CREATE INDEX telemetry_unbatched ON telemetry (device, seq) WHERE batch IS NULL",
    "CREATE TABLE batch (id INTEGER PRIMARY KEY, device BLOB NOT NULL, root BLOB NOT NULL,"
    " first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, count INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, from_block INTEGER NOT NULL, tx_hash BLOB,"
    " block_number INTEGER, gas_used INTEGER) STRICT",
)
_KIND: Final = FileKind(
    name="device store",
    described="a device store",
    application_id=0x6D326D64,  # "m2md": this file is an m2mpay device store
    format=1,
    schema=_SCHEMA,
)
_TELEMETRY_COLUMNS: Final = "device, seq, at_ms, received_ms, data, batch"
_BATCH_COLUMNS: Final = (
    "id, device, root, first_seq, last_seq, count, created_ms, from_block,"
    " tx_hash, block_number, gas_used"
)
_COMMAND_COLUMNS: Final = "id, device, session, service, action, until_units, units, created_ms"


class SqliteDeviceStore(DeviceStore):
    def __init__(self, path: str | Path) -> None:
        self._file = SqliteFile(Path(path), _KIND, thread_name="m2mpay-devices")
        self.path = self._file.path

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return in_transaction(self._file.db(), work, "BEGIN IMMEDIATE")

    async def open(self) -> None:
        if not self._file.is_open:
            await self._file.open(_nothing, _nothing)

    async def close(self) -> None:
        await self._file.close()

    # -- devices

    async def save_device(self, device: DeviceRecord) -> None:
        services = json.dumps([s.to_dict() for s in device.services])

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO device (address, name, services, registered_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (address) DO UPDATE SET name = excluded.name,"
                " services = excluded.services, registered_ms = excluded.registered_ms",
                (bytes(device.address), device.name, services, device.registered_ms),
            )

        await self._file.call(self._write, work)

    async def load_devices(self) -> list[DeviceRecord]:
        return await self._file.select(
            _device, "SELECT address, name, services, registered_ms FROM device"
        )

    # -- commands

    async def save_command(self, command: CommandRecord) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE command SET state = ? WHERE device = ? AND session = ? AND state = ?",
                (
                    CommandState.SUPERSEDED.value,
                    bytes(command.device),
                    command.session,
                    CommandState.PENDING.value,
                ),
            )
            conn.execute(
                f"INSERT INTO command ({_COMMAND_COLUMNS}, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    command.id,
                    bytes(command.device),
                    command.session,
                    command.service,
                    command.action,
                    command.until_units,
                    command.units,
                    command.created_ms,
                    CommandState.PENDING.value,
                ),
            )

        await self._file.call(self._write, work)

    async def settle_command(self, device: Address, command_id: bytes, ok: bool) -> bool:
        state = CommandState.ACKED if ok else CommandState.REFUSED

        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE command SET state = ? WHERE id = ? AND device = ? AND state = ?",
                (state.value, command_id, bytes(device), CommandState.PENDING.value),
            )
            return cursor.rowcount == 1

        return await self._file.call(self._write, work)

    async def pending_commands(self, device: Address) -> list[CommandRecord]:
        return await self._file.select(
            _command,
            f"SELECT {_COMMAND_COLUMNS} FROM command WHERE device = ? AND state = ? ORDER BY n",
            bytes(device),
            CommandState.PENDING.value,
        )

    # -- telemetry

    async def add_telemetry(self, record: TelemetryRecord) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            last = conn.execute(
                "SELECT max(seq) FROM telemetry WHERE device = ?", (bytes(record.device),)
            ).fetchone()[0]
            if last is not None and record.seq <= last:
                return False
            conn.execute(
                f"INSERT INTO telemetry ({_TELEMETRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)",
                (
                    bytes(record.device),
                    record.seq,
                    record.at_ms,
                    record.received_ms,
                    record.data,
                ),
            )
            return True

        return await self._file.call(self._write, work)

    async def last_telemetry_seq(self, device: Address) -> int:
        [last] = await self._file.select(
            lambda row: int(row[0] or 0),
            "SELECT max(seq) FROM telemetry WHERE device = ?",
            bytes(device),
        )
        return last

    async def telemetry(
        self, device: Address, *, since_ms: int = 0, after_seq: int = 0, limit: int = 1000
    ) -> list[TelemetryRecord]:
        return await self._file.select(
            _telemetry,
            f"SELECT {_TELEMETRY_COLUMNS} FROM telemetry"
            " WHERE device = ? AND seq > ? AND at_ms >= ? ORDER BY seq LIMIT ?",
            bytes(device),
            after_seq,
            since_ms,
            limit,
        )

    async def unbatched(self, limit: int) -> list[TelemetryRecord]:
        return await self._file.select(
            _telemetry,
            f"SELECT {_TELEMETRY_COLUMNS} FROM telemetry WHERE batch IS NULL"
            " ORDER BY device, seq LIMIT ?",
            limit,
        )

    # -- batches

    async def create_batches(self, batches: Sequence[NewBatch]) -> list[BatchRecord]:
        def work(conn: sqlite3.Connection) -> list[BatchRecord]:
            created = []
            for new in batches:
                cursor = conn.execute(
                    "INSERT INTO batch (device, root, first_seq, last_seq, count, created_ms,"
                    " from_block) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        bytes(new.device),
                        new.root,
                        new.seqs[0],
                        new.seqs[-1],
                        len(new.seqs),
                        new.created_ms,
                        new.from_block,
                    ),
                )
                batch_id = int(cursor.lastrowid or 0)
                conn.executemany(
                    "UPDATE telemetry SET batch = ? WHERE device = ? AND seq = ? AND batch IS NULL",
                    [(batch_id, bytes(new.device), seq) for seq in new.seqs],
                )
                created.append(new.recorded(batch_id))
            return created

        return await self._file.call(self._write, work)

    async def mark_anchored(
        self, batch_ids: Sequence[int], tx_hash: bytes, block_number: int, gas_used: int
    ) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE batch SET tx_hash = ?, block_number = ?, gas_used = ? WHERE id = ?",
                [(tx_hash, block_number, gas_used, batch_id) for batch_id in batch_ids],
            )

        await self._file.call(self._write, work)

    async def batch(self, batch_id: int) -> BatchRecord | None:
        found = await self._file.select(
            _batch, f"SELECT {_BATCH_COLUMNS} FROM batch WHERE id = ?", batch_id
        )
        return found[0] if found else None

    async def batch_records(self, batch_id: int) -> list[TelemetryRecord]:
        return await self._file.select(
            _telemetry,
            f"SELECT {_TELEMETRY_COLUMNS} FROM telemetry WHERE batch = ? ORDER BY seq",
            batch_id,
        )

    async def unanchored_batches(self) -> list[BatchRecord]:
        return await self._file.select(
            _batch, f"SELECT {_BATCH_COLUMNS} FROM batch WHERE block_number IS NULL ORDER BY id"
        )


def _services(text: str) -> tuple[ServiceRecord, ...]:
    raw: list[dict[str, Any]] = json.loads(text)
    return tuple(ServiceRecord.from_dict(s) for s in raw)


def _device(row: tuple[Any, ...]) -> DeviceRecord:
    address, name, services, registered_ms = row
    return DeviceRecord(Address(address), name, _services(services), registered_ms)


def _command(row: tuple[Any, ...]) -> CommandRecord:
    command_id, device, session, service, action, until_units, units, created_ms = row
    return CommandRecord(
        command_id, Address(device), session, service, action, until_units, units, created_ms
    )


def _telemetry(row: tuple[Any, ...]) -> TelemetryRecord:
    device, seq, at_ms, received_ms, data, batch = row
    return TelemetryRecord(Address(device), seq, at_ms, received_ms, data, batch)


def _batch(row: tuple[Any, ...]) -> BatchRecord:
    batch_id, device, root, first, last, count, created, from_block, tx, block, gas = row
    return BatchRecord(
        id=batch_id,
        root=root,
        created_ms=created,
        from_block=from_block,
        tx_hash=tx,
        block_number=block,
        gas_used=gas,
        device=Address(device),
        first_seq=first,
        last_seq=last,
        count=count,
    )


def _nothing(conn: sqlite3.Connection) -> None:
    """The device store has nothing beyond its schema to write when created or to read
    when opened."""
