"""What the device bus tells the rest of the daemon: devices as views, and events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from m2mpay.bus.store import DeviceRecord
from m2mpay.crypto import Address

__all__ = [
    "BusEvent",
    "BusListener",
    "CommandAcknowledged",
    "DeviceConnected",
    "DeviceDisconnected",
    "DeviceInfo",
    "DeviceRegistered",
    "DeviceStateChanged",
    "TelemetryStored",
]


@dataclass(frozen=True, slots=True)
class DeviceInfo(DeviceRecord):
    """A registered device as the bus knows it now: its record, and how it is doing."""

    connected: bool
    last_seen_ms: int  # 0: not since the bus started
    state: str  # the device's own word in its last `device_status` ("unknown" before)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """For the API: integer strings for prices, checksum addresses."""
        return {
            "address": self.address.checksum,
            "name": self.name,
            "services": [s.to_dict() for s in self.services],
            "registered_ms": self.registered_ms,
            "connected": self.connected,
            "last_seen_ms": self.last_seen_ms,
            "state": self.state,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True, slots=True)
class DeviceRegistered:
    """A device registered (or changed) its services; durable."""

    device: DeviceInfo


@dataclass(frozen=True, slots=True)
class DeviceConnected:
    device: Address


@dataclass(frozen=True, slots=True)
class DeviceDisconnected:
    device: Address


@dataclass(frozen=True, slots=True)
class DeviceStateChanged:
    """A device's own word for its state changed in a `device_status` ("on" → "off")."""

    device: Address
    state: str


@dataclass(frozen=True, slots=True)
class CommandAcknowledged:
    """A device answered a command; `ok` False means it refused (`error` says why)."""

    device: Address
    command_id: bytes
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class TelemetryStored:
    device: Address
    seq: int


BusEvent = (
    DeviceRegistered
    | DeviceConnected
    | DeviceDisconnected
    | DeviceStateChanged
    | CommandAcknowledged
    | TelemetryStored
)
BusListener = Callable[[BusEvent], None]
