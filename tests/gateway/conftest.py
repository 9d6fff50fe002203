"""Fixtures of the device bus tests: a `DeviceBus` on a SQLite store, mounted in a
FastAPI app served by uvicorn on a free loopback port, and raw devices that speak
the protocol over a real WebSocket (the `websockets` client), JSON by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from m2mpay.asgi import AsgiServer
from m2mpay.chain import TelemetryAnchor
from m2mpay.crypto import Address, PrivateKey
from m2mpay.gateway.bus import BusConfig, DeviceBus
from m2mpay.gateway.bus_events import BusEvent
from m2mpay.gateway.bus_messages import login_digest
from m2mpay.gateway.device_sqlite import SqliteDeviceStore
from m2mpay.gateway.telemetry import TelemetryBatcher, TelemetryConfig
from tests.node.conftest import chain, make_node  # noqa: F401 (fixtures, for the end to end)
from tests.stream.conftest import make_party  # noqa: F401 (a fixture, for the end to end)

WS_PATH = "/v1/devices/ws"
ASSET = Address("0x" + "ab" * 20)
PRICE = 10**15


def bus_app(bus: DeviceBus) -> FastAPI:
    """The smallest app that serves the bus where the daemon will."""
    app = FastAPI()
    app.add_api_websocket_route(WS_PATH, bus.handle)
    return app


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


class RawDevice:
    """A device by hand: JSON messages over the socket, nothing hidden."""

    def __init__(self, websocket: ClientConnection, key: PrivateKey) -> None:
        self.websocket = websocket
        self.key = key
        self.challenge: dict[str, Any] = {}

    @property
    def address(self) -> Address:
        return self.key.address

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.websocket.send(
            message if isinstance(message, str | bytes) else json.dumps(message)
        )

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            result: dict[str, Any] = json.loads(await self.websocket.recv())
            return result

    async def expect(self, kind: str) -> dict[str, Any]:
        """The next message, which must be of type `kind`."""
        message = await self.recv()
        assert message["type"] == kind, message
        return message

    async def closed(self) -> int | None:
        """Wait until the bus closes the connection; its close code."""
        try:
            async with asyncio.timeout(10):
                while True:
                    await self.websocket.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None

    def login_message(self, *, signer: PrivateKey | None = None) -> dict[str, Any]:
        challenge = bytes.fromhex(self.challenge["challenge"][2:])
        server = Address(self.challenge["server"])
        signature = (signer or self.key).sign_digest(login_digest(server, challenge, self.address))
        return {
            "type": "login",
            "address": self.address.checksum,
            "challenge": self.challenge["challenge"],
            "signature": "0x" + signature.hex(),
        }

    async def login(self) -> dict[str, Any]:
        await self.send(self.login_message())
        return await self.expect("welcome")

    async def register(self, *, price: int = PRICE, name: str = "hall lamp") -> dict[str, Any]:
        await self.send(
            {
                "type": "device_register",
                "name": name,
                "services": [
                    {
                        "name": "light",
                        "unit": "s",
                        "price": str(price),
                        "asset": ASSET.checksum,
                        "kind": "actuation",
                    }
                ],
            }
        )
        return await self.expect("registered")

    async def close(self) -> None:
        await self.websocket.close()


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
