"""The device bus on its own, and a device speaking its JSON by hand: for tests and
torture runs that drive the bus's protocol directly (no SDK in between)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from m2mpay.bus.messages import login_digest
from m2mpay.bus.server import DeviceBus
from m2mpay.crypto import Address, PrivateKey

__all__ = ["ASSET", "PRICE", "WS_PATH", "RawDevice", "bus_app"]

WS_PATH: Final = "/v1/devices/ws"
ASSET: Final = Address("0x" + "ab" * 20)
PRICE: Final = 10**15


def bus_app(bus: DeviceBus) -> FastAPI:
    """The smallest app that serves the bus where the daemon will."""
    app = FastAPI()
    app.add_api_websocket_route(WS_PATH, bus.handle)
    return app


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
