"""Fixtures of the device bus tests: a `DeviceBus` on a SQLite store, mounted in a
FastAPI app served by uvicorn on a free loopback port, and raw devices that speak
the protocol over a real WebSocket (the `websockets` client), JSON by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from m2mpay.asgi import AsgiServer
from m2mpay.bench.bus_device import WS_PATH, RawDevice, bus_app
from m2mpay.bus.events import BusEvent
from m2mpay.bus.server import BusConfig, DeviceBus
from m2mpay.bus.sqlite import SqliteDeviceStore
from m2mpay.chain import TelemetryAnchor
from m2mpay.crypto import PrivateKey
from m2mpay.provenance.telemetry import TelemetryBatcher, TelemetryConfig
from tests.node.conftest import chain, make_node  # noqa: F401 (fixtures, for the end to end)
from tests.stream.conftest import make_party  # noqa: F401 (a fixture, for the end to end)


@dataclass
class BusHost:
    """A running bus, its server and everything it told its listeners."""

    bus: DeviceBus
    server: AsgiServer
    url: str
    events: list[BusEvent] = field(default_factory=list)

    async def stop(self) -> None:
        await self.server.stop()
        await self.bus.stop()


BusFactory = Callable[..., Awaitable[BusHost]]


@pytest.fixture
async def make_bus(tmp_path: Path) -> AsyncIterator[BusFactory]:
    """Starts buses; a second one on the same `store` name is the first after a restart."""
    hosts: list[BusHost] = []

    async def make(
        *,
        server_key: PrivateKey | None = None,
        store: str = "devices",
        config: BusConfig | None = None,
        anchor: TelemetryAnchor | None = None,
        signer: PrivateKey | None = None,
        telemetry: TelemetryConfig | None = None,
    ) -> BusHost:
        device_store = SqliteDeviceStore(tmp_path / f"{store}.sqlite3")
        bus = DeviceBus(
            (server_key or SERVER_KEY).address,
            device_store,
            telemetry=TelemetryBatcher(
                device_store, anchor=anchor, signer=signer, config=telemetry
            ),
            config=config,
        )
        await bus.start()
        server = AsgiServer(bus_app(bus), name="device bus")
        base = await server.start()
        host = BusHost(bus, server, base.replace("http://", "ws://") + WS_PATH)
        bus.add_listener(host.events.append)
        hosts.append(host)
        return host

    yield make
    for host in reversed(hosts):
        await host.stop()


SERVER_KEY = PrivateKey(bytes([7]) * 32)


DeviceFactory = Callable[..., Awaitable[RawDevice]]


@pytest.fixture
async def connect_device() -> AsyncIterator[DeviceFactory]:
    """Opens a device connection and reads the challenge; closes them all at the end."""
    opened: list[RawDevice] = []

    async def open_device(url: str, key: PrivateKey) -> RawDevice:
        websocket = await connect(url, proxy=None, open_timeout=5)
        device = RawDevice(websocket, key)
        device.challenge = await device.expect("challenge")
        opened.append(device)
        return device

    yield open_device
    for device in opened:
        await device.close()
