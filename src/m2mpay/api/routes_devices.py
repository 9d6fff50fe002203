"""Devices: the WebSocket bus they join (`/v1/devices/ws`), and what the API shows of
them: registrations, status, telemetry and its proof against the anchor on chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import ADDRESS
from m2mpay.api.models_devices import (
    DeviceList,
    DeviceServiceView,
    DeviceView,
    TelemetryList,
    TelemetryProofView,
    TelemetryView,
)
from m2mpay.bus.events import DeviceInfo
from m2mpay.bus.server import DeviceBus

__all__ = ["device_routes"]

DevicePath = Annotated[str, Path(pattern=ADDRESS, description="The device's address.")]


def _view(info: DeviceInfo) -> DeviceView:
    return DeviceView(
        device_id=info.address.checksum,
        name=info.name,
        online=info.connected,
        state=info.state,
        services=[DeviceServiceView.model_validate(s.to_dict()) for s in info.services],
        registered_ms=info.registered_ms,
        last_seen_ms=info.last_seen_ms,
        detail=info.detail,
    )


def device_routes(gw: Gateway, bus: DeviceBus) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "devices")
    # Devices authenticate on the socket itself, by signing the bus's challenge.
    routes.router.add_api_websocket_route("/v1/devices/ws", bus.handle)

    @routes.read("/v1/devices", DeviceList)
    async def devices() -> DeviceList:
        return DeviceList(devices=[_view(d) for d in bus.devices()])

    @routes.read("/v1/devices/{device_id}", DeviceView)
    async def device(device_id: DevicePath) -> DeviceView:
        return _view(bus.device(device_id))

    @routes.read(
        "/v1/devices/{device_id}/telemetry",
        TelemetryList,
        summary="Telemetry records after `after` (a seq), oldest first",
    )
    async def telemetry(
        device_id: DevicePath,
        after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        since_ms: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> TelemetryList:
        records = await bus.telemetry(device_id, since_ms, after_seq=after, limit=limit)
        return TelemetryList(records=[TelemetryView(**r) for r in records])

    @routes.read(
        "/v1/devices/{device_id}/telemetry/{seq}/proof",
        TelemetryProofView,
        summary="A record's Merkle path to the batch root anchored on chain",
    )
    async def proof(
        device_id: DevicePath, seq: Annotated[int, Path(ge=0, le=2**63 - 1)]
    ) -> TelemetryProofView:
        return TelemetryProofView(**(await bus.prove(device_id, seq)).to_dict())

    return routes.router
