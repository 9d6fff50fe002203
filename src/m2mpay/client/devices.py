"""Devices on the node's device bus: who is registered, what they offer, their telemetry.

The shapes follow the device bus protocol (`device_register` services, `telemetry`
records). Fields a node does not send take their defaults, so a device view stays
readable while the bus grows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from m2mpay.client.base import ApiBase, decode_items, path_id
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import Address

__all__ = ["DeviceApi", "DeviceView", "ServiceView", "TelemetryProofView", "TelemetryRecord"]


@dataclass(frozen=True, slots=True)
class ServiceView:
    name: str  # e.g. `light`
    unit: str  # s, Wh, message…
    price: Amount  # per unit
    asset: str
    kind: str = "actuation"


@dataclass(frozen=True, slots=True)
class DeviceView:
    device_id: str  # the device's address: it logs in by signing with its key
    name: str = ""
    online: bool = False
    state: str = ""  # the device's own word in its last status
    services: tuple[ServiceView, ...] = ()
    registered_ms: int = 0
    last_seen_ms: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class TelemetryRecord:
    seq: int
    at_ms: int  # when measured, device clock
    received_ms: int = 0  # when the node stored it, its clock
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)
    batch: int | None = None  # the anchored batch holding it, once batched


@dataclass(frozen=True, slots=True)
class TelemetryProofView:
    """A record's Merkle path to the root of its batch, and where the root is anchored."""

    device: Address
    seq: int
    at_ms: int
    data: str  # the record's data as canonical JSON text: the leaf's pre-image
    leaf: str
    batch: int
    index: int
    count: int
    first_seq: int
    siblings: tuple[str, ...]
    root: str
    anchor: Address | None
    chain_id: int | None
    tx_hash: str | None
    block_number: int | None


class DeviceApi(ApiBase):
    async def devices(self) -> list[DeviceView]:
        return decode_items(DeviceView, await self._call("GET", "/v1/devices"), "devices")

    async def device(self, device_id: str) -> DeviceView:
        return decode(DeviceView, await self._call("GET", f"/v1/devices/{path_id(device_id)}"))

    async def telemetry(
        self, device_id: str, *, after: int = 0, limit: int = 100
    ) -> list[TelemetryRecord]:
        """The device's telemetry records with `seq` above `after`, oldest first."""
        raw = await self._call(
            "GET",
            f"/v1/devices/{path_id(device_id)}/telemetry",
            params={"after": after, "limit": limit},
        )
        return decode_items(TelemetryRecord, raw, "records")

    async def telemetry_proof(self, device_id: str, seq: int) -> TelemetryProofView:
        """The proof that record `seq` is in an anchored batch (404 until it is batched)."""
        raw = await self._call("GET", f"/v1/devices/{path_id(device_id)}/telemetry/{seq}/proof")
        return decode(TelemetryProofView, raw)
