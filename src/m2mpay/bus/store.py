"""The device bus's durable memory: devices and their services, commands not yet
acknowledged, telemetry records and the batches that anchor them.

`DeviceStore` is the boundary; `SqliteDeviceStore` (`m2mpay.bus.sqlite`)
is the real one, `MemoryDeviceStore` here the fake for tests. Every write is durable
when its coroutine returns: the bus acknowledges nothing before that (log, then act).
"""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace

from m2mpay.crypto import Address
from m2mpay.errors import StoreError
from m2mpay.lifecycle import Openable
from m2mpay.provenance.records import BatchRecord, NewBatch, TelemetryRecord
from m2mpay.stream import ServiceKind

__all__ = [
    "CommandRecord",
    "CommandState",
    "DeviceRecord",
    "DeviceStore",
    "MemoryDeviceStore",
    "ServiceRecord",
]


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    name: str
    unit: str
    price: int  # per unit, in the asset's smallest unit
    asset: Address
    kind: ServiceKind


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    address: Address
    name: str
    services: tuple[ServiceRecord, ...]
    registered_ms: int

    def service(self, name: str) -> ServiceRecord | None:
        return next((s for s in self.services if s.name == name), None)


class CommandState(enum.Enum):
    PENDING = "pending"  # stored, maybe sent, not acknowledged
    ACKED = "acked"
    REFUSED = "refused"  # the device answered ok=false
    SUPERSEDED = "superseded"  # a newer command for the same session replaced it


@dataclass(frozen=True, slots=True)
class CommandRecord:
    id: bytes  # 16 random bytes
    device: Address
    session: bytes
    service: str
    action: str  # on | off | end
    until_units: int
    units: int
    created_ms: int


class DeviceStore(Openable):
    """See the module docstring. Use as an async context manager, or open and close."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    # -- devices

    @abstractmethod
    async def save_device(self, device: DeviceRecord) -> None:
        """Insert or replace a device's registration."""

    @abstractmethod
    async def load_devices(self) -> list[DeviceRecord]: ...

    # -- commands

    @abstractmethod
    async def save_command(self, command: CommandRecord) -> None:
        """Store a pending command; pending ones of the same device and session are
        superseded in the same transaction (commands carry absolute targets)."""

    @abstractmethod
    async def settle_command(self, device: Address, command_id: bytes, ok: bool) -> bool:
        """Mark a pending command acknowledged (or refused); False if it was not pending."""

    @abstractmethod
    async def pending_commands(self, device: Address) -> list[CommandRecord]:
        """A device's commands not yet acknowledged, oldest first."""

    # -- telemetry

    @abstractmethod
    async def add_telemetry(self, record: TelemetryRecord) -> bool:
        """Store a record; False (and nothing stored) if its seq is not above the last."""

    @abstractmethod
    async def last_telemetry_seq(self, device: Address) -> int: ...

    @abstractmethod
    async def telemetry(
        self, device: Address, *, since_ms: int = 0, after_seq: int = 0, limit: int = 1000
    ) -> list[TelemetryRecord]:
        """A device's records measured at or after `since_ms`, after `after_seq`, by seq."""

    @abstractmethod
    async def unbatched(self, limit: int) -> list[TelemetryRecord]:
        """Records in no batch yet, by device and seq."""

    # -- batches

    @abstractmethod
    async def create_batches(self, batches: Sequence[NewBatch]) -> list[BatchRecord]:
        """Record batches and put their records in them, in one transaction."""

    @abstractmethod
    async def mark_anchored(
        self, batch_ids: Sequence[int], tx_hash: bytes, block_number: int, gas_used: int
    ) -> None: ...

    @abstractmethod
    async def batch(self, batch_id: int) -> BatchRecord | None: ...

    @abstractmethod
    async def batch_records(self, batch_id: int) -> list[TelemetryRecord]:
        """A batch's records, in leaf order."""

    @abstractmethod
    async def unanchored_batches(self) -> list[BatchRecord]:
        """Batches recorded but not yet seen on chain, oldest first."""


class MemoryDeviceStore(DeviceStore):
    """The fake: the same behaviour in dictionaries (durable for the process's life)."""

    def __init__(self) -> None:
        self._open = False
        self._devices: dict[Address, DeviceRecord] = {}
        self._commands: dict[bytes, tuple[CommandRecord, CommandState]] = {}
        self._telemetry: dict[Address, dict[int, TelemetryRecord]] = {}
        self._batches: dict[int, BatchRecord] = {}

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _check(self) -> None:
        if not self._open:
            raise StoreError("the device store is closed")

    async def save_device(self, device: DeviceRecord) -> None:
        self._check()
        self._devices[device.address] = device

    async def load_devices(self) -> list[DeviceRecord]:
        self._check()
        return list(self._devices.values())

    async def save_command(self, command: CommandRecord) -> None:
        self._check()
        for key, (other, state) in list(self._commands.items()):
            if (
                state is CommandState.PENDING
                and other.device == command.device
                and other.session == command.session
            ):
                self._commands[key] = (other, CommandState.SUPERSEDED)
        self._commands[command.id] = (command, CommandState.PENDING)

    async def settle_command(self, device: Address, command_id: bytes, ok: bool) -> bool:
        self._check()
        found = self._commands.get(command_id)
        if found is None or found[0].device != device or found[1] is not CommandState.PENDING:
            return False
        self._commands[command_id] = (
            found[0],
            CommandState.ACKED if ok else CommandState.REFUSED,
        )
        return True

    async def pending_commands(self, device: Address) -> list[CommandRecord]:
        self._check()
        return [
            command
            for command, state in self._commands.values()
            if command.device == device and state is CommandState.PENDING
        ]

    async def add_telemetry(self, record: TelemetryRecord) -> bool:
        self._check()
        records = self._telemetry.setdefault(record.device, {})
        if records and record.seq <= max(records):
            return False
        records[record.seq] = replace(record, batch=None)
        return True

    async def last_telemetry_seq(self, device: Address) -> int:
        self._check()
        records = self._telemetry.get(device)
        return max(records) if records else 0

    async def telemetry(
        self, device: Address, *, since_ms: int = 0, after_seq: int = 0, limit: int = 1000
    ) -> list[TelemetryRecord]:
        self._check()
        records = sorted(self._telemetry.get(device, {}).values(), key=lambda r: r.seq)
        return [r for r in records if r.at_ms >= since_ms and r.seq > after_seq][:limit]

    async def unbatched(self, limit: int) -> list[TelemetryRecord]:
        self._check()
        found = [
            record
            for device in sorted(self._telemetry)
            for record in sorted(self._telemetry[device].values(), key=lambda r: r.seq)
            if record.batch is None
        ]
        return found[:limit]

    async def create_batches(self, batches: Sequence[NewBatch]) -> list[BatchRecord]:
        self._check()
        created = []
        for new in batches:
            batch_id = len(self._batches) + 1
            record = new.recorded(batch_id)
            self._batches[batch_id] = record
            records = self._telemetry[new.device]
            for seq in new.seqs:
                records[seq] = replace(records[seq], batch=batch_id)
            created.append(record)
        return created

    async def mark_anchored(
        self, batch_ids: Sequence[int], tx_hash: bytes, block_number: int, gas_used: int
    ) -> None:
        self._check()
        for batch_id in batch_ids:
            self._batches[batch_id] = replace(
                self._batches[batch_id],
                tx_hash=tx_hash,
                block_number=block_number,
                gas_used=gas_used,
            )

    async def batch(self, batch_id: int) -> BatchRecord | None:
        self._check()
        return self._batches.get(batch_id)

    async def batch_records(self, batch_id: int) -> list[TelemetryRecord]:
        self._check()
        batch = self._batches.get(batch_id)
        if batch is None:
            return []
        records = self._telemetry[batch.device].values()
        return sorted((r for r in records if r.batch == batch_id), key=lambda r: r.seq)

    async def unanchored_batches(self) -> list[BatchRecord]:
        self._check()
        return [b for b in sorted(self._batches.values(), key=lambda b: b.id) if not b.anchored]
