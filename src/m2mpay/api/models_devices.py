"""The models of the device routes (`/v1/devices…`): the devices on the node's bus, their
telemetry and a record's proof of its anchoring."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from m2mpay.api import examples as ex
from m2mpay.api.examples import example
from m2mpay.api.models import Address, Amount, Hex32, ServiceKindName

__all__ = [
    "DeviceList",
    "DeviceServiceView",
    "DeviceView",
    "TelemetryList",
    "TelemetryProofView",
    "TelemetryView",
]


class DeviceServiceView(BaseModel):
    name: str
    unit: str
    price: Amount
    asset: Address
    kind: ServiceKindName


class DeviceView(BaseModel):
    model_config = example(ex.DEVICE)
    device_id: Address = Field(description="The device's address: it logs in with its key.")
    name: str
    online: bool
    state: str = Field(description="The device's own word in its last status.")
    services: list[DeviceServiceView]
    registered_ms: int
    last_seen_ms: int
    detail: dict[str, Any]


class DeviceList(BaseModel):
    model_config = example({"devices": [ex.DEVICE]})
    devices: list[DeviceView]


class TelemetryView(BaseModel):
    seq: int
    at_ms: int = Field(description="When measured, by the device's clock.")
    received_ms: int
    data: dict[str, Any]
    batch: int | None = Field(description="The anchored batch holding it, once batched.")


class TelemetryList(BaseModel):
    records: list[TelemetryView]


class TelemetryProofView(BaseModel):
    device: Address
    seq: int
    at_ms: int
    data: str = Field(description="The record's data as canonical JSON text.")
    leaf: Hex32
    batch: int
    index: int
    count: int
    first_seq: int
    siblings: list[Hex32]
    root: Hex32
    anchor: Address | None
    chain_id: int | None
    tx_hash: Hex32 | None
    block_number: int | None
