"""A device's side of the device bus, speaking only the public protocol: JSON over a
WebSocket (`m2mpay.bus.messages` describes every message).

`BusClient` logs in with the device's own key (refusing a bus whose address is not
the pinned one), registers the device's services after each welcome, acknowledges
every command, keeps telemetry records until the bus acknowledges them and re-sends
them after a reconnect, and reconnects by itself (the bus then sends the commands
it missed) until stopped. A device subclasses it and says what it offers
(`services`), what a command does (`execute`) and what its meters read (`meters`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from m2mpay.bus.messages import (
    BadMessage,
    ChallengeMessage,
    login_digest,
    parse_bus_message,
)
from m2mpay.crypto import Address, PrivateKey
from m2mpay.lifecycle import cancel_and_wait

__all__ = ["BusClient", "DeviceListener", "load_device_key"]

log = logging.getLogger("m2mpay.devices")


@dataclass
class _Telemetry:
    seq: int
    at_ms: int
    data: dict[str, Any]


class DeviceListener:
    """What a device's owner hears of it as it runs (`m2mpay device run` prints it);
    this one hears nothing. Called on the device's loop, after the fact."""

    def registered(self, device: BusClient, server: Address) -> None:
        """The bus of `server` (a node's address) took the device's services."""

    def disconnected(self, device: BusClient, reason: str) -> None:
        """The connection ended or could not be made; the device tries again."""

    def refused(self, device: BusClient, server: Address) -> None:
        """A bus answered for another node than the pinned one."""

    def commanded(self, device: BusClient, command: dict[str, Any], error: str | None) -> None:
        """A command was carried out (or refused with `error`)."""

    def reported(self, device: BusClient, meters: list[dict[str, Any]]) -> None:
        """The meters the device just told the bus (as in `device_status`)."""

    def bus_error(self, device: BusClient, message: dict[str, Any]) -> None:
        """The bus said an error."""


class BusClient:
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        key: PrivateKey,
        *,
        name: str,
        reconnect_s: float = 0.2,
        server: Address | None = None,
    ) -> None:
        self.url = url
        self.key = key
        self.name = name
        self.reconnect_s = reconnect_s
        self.server = server  # pinned: refuse a bus with another address
        self.commands: list[dict[str, Any]] = []  # every command received, repeats too
        self.logins = 0
        self.errors: list[dict[str, Any]] = []
        self.refused: list[Address] = []  # buses that were not the pinned one
        self.connected = asyncio.Event()
        self._online = True
        self._websocket: ClientConnection | None = None
        self._server: Address | None = None  # the bus's, as its challenge said
        self._telemetry_seq = 0
        self._unacked: dict[int, _Telemetry] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.listener = DeviceListener()

    @property
    def address(self) -> Address:
        return self.key.address

    # ------------------------------------------------------------------ what a device says

    def services(self) -> list[dict[str, Any]]:
        """The `device_register` services: name, unit, price, asset, kind."""
        raise NotImplementedError

    async def execute(self, command: dict[str, Any]) -> str | None:
        """Carry out a command; an error text refuses it."""
        raise NotImplementedError

    def meters(self) -> list[dict[str, Any]]:
        """Units delivered per session: session, service, delivered, active."""
        raise NotImplementedError

    def delivered(self, session: bytes | str, service: str) -> int:
        """Whole units metered in a session of `service` (0 if it never heard of it)."""
        raise NotImplementedError

    def state(self) -> str:
        return "online"

    def detail(self) -> dict[str, Any]:
        return {}

    def background(self) -> list[Coroutine[Any, Any, None]]:
        """What runs beside the connection while the device is started (its clock)."""
        return []

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._tasks = [asyncio.ensure_future(c) for c in (self._connect_loop(), *self.background())]

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        await self._hang_up()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def go_offline(self) -> None:
        """Drop the connection and stay away (the device goes on by its own clock)."""
        self._online = False
        await self._hang_up()

    def go_online(self) -> None:
        self._online = True

    async def _hang_up(self) -> None:
        websocket, self._websocket = self._websocket, None
        self.connected.clear()
        if websocket is not None:
            await websocket.close()

    # ------------------------------------------------------------------ what a device sends

    async def report(self) -> None:
        """Tell the bus the meters (`device_status`)."""
        meters = self.meters()[-256:]
        await self._send(
            {
                "type": "device_status",
                "state": self.state(),
                "sessions": meters,
                "detail": self.detail(),
            }
        )
        self.listener.reported(self, meters)

    async def record(self, data: dict[str, Any]) -> None:
        """A telemetry record, kept until the bus acknowledges it."""
        self._telemetry_seq += 1
        record = _Telemetry(self._telemetry_seq, int(time.time() * 1000), data)
        self._unacked[record.seq] = record
        await self._send_telemetry(record)

    # ------------------------------------------------------------------ the connection

    async def _connect_loop(self) -> None:
        while True:
            if self._online:
                ended = "the bus closed the connection"
                try:
                    async with connect(self.url, proxy=None, open_timeout=5) as websocket:
                        await self._serve(websocket)
                except (
                    OSError,
                    TimeoutError,
                    InvalidHandshake,
                    InvalidURI,
                    ConnectionClosed,
                ) as exc:
                    log.info("%s %s: connection ended: %s", self.name, self.address, exc)
                    ended = str(exc) or type(exc).__name__
                finally:
                    self._websocket = None
                    self.connected.clear()
                if self._online:  # not a hang-up of our own
                    self.listener.disconnected(self, ended)
            await asyncio.sleep(self.reconnect_s)

    async def _send(self, message: dict[str, Any]) -> None:
        websocket = self._websocket
        if websocket is not None:
            with contextlib.suppress(ConnectionClosed):
                await websocket.send(json.dumps(message))

    async def _serve(self, websocket: ClientConnection) -> None:
        try:
            hello = parse_bus_message(await websocket.recv())
        except BadMessage as exc:
            log.warning("%s: the bus sent no message: %s", self.address, exc)
            return
        if not isinstance(hello, ChallengeMessage):
            log.warning("%s: the bus did not send a challenge: %s", self.address, hello.type)
            return
        server = Address(hello.server)
        if self.server is not None and server != self.server:
            self.refused.append(server)
            self.listener.refused(self, server)
            log.warning("%s: refusing bus %s (expected %s)", self.address, server, self.server)
            await websocket.close()
            return
        challenge = bytes.fromhex(hello.challenge[2:])
        signature = self.key.sign_digest(login_digest(server, challenge, self.address))
        self._websocket = websocket
        self._server = server
        await self._send(
            {
                "type": "login",
                "address": self.address.checksum,
                "challenge": hello.challenge,
                "signature": "0x" + signature.hex(),
            }
        )
        async for raw in websocket:
            # The bus's bytes are parsed as a device's are on the bus: a bounded size,
            # a bounded depth (the stdlib parser recursed in C until the stack broke
            # on 100,000 levels, with the recursion limit py-evm raises) and the
            # declared fields; what fails is logged and skipped.
            try:
                message = parse_bus_message(raw)
            except BadMessage as exc:
                log.warning(
                    "%s %s: unreadable message from the bus: %s", self.name, self.address, exc
                )
                continue
            await self._on_message(message.model_dump())

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "welcome":
            self.logins += 1
            stored = int(message["telemetry_seq"])
            self._telemetry_seq = max(self._telemetry_seq, stored)
            for seq in [seq for seq in self._unacked if seq <= stored]:
                del self._unacked[seq]  # the bus has it: the ack was lost with the link
            await self._send(
                {"type": "device_register", "name": self.name, "services": self.services()}
            )
            for record in sorted(self._unacked.values(), key=lambda r: r.seq):
                await self._send_telemetry(record)
            await self.report()
        elif kind == "registered":
            self.connected.set()
            if self._server is not None:
                self.listener.registered(self, self._server)
        elif kind == "command":
            self.commands.append(message)
            error = await self.execute(message)
            ack: dict[str, Any] = {"type": "command_ack", "id": message["id"], "ok": error is None}
            if error is not None:
                ack["error"] = error
            await self._send(ack)
            self.listener.commanded(self, message, error)
        elif kind == "telemetry_ack":
            self._unacked.pop(int(message["seq"]), None)
        elif kind == "error":
            self.errors.append(message)
            log.warning("%s %s: the bus says %s", self.name, self.address, message)
            self.listener.bus_error(self, message)

    async def _send_telemetry(self, record: _Telemetry) -> None:
        await self._send(
            {"type": "telemetry", "seq": record.seq, "at_ms": record.at_ms, "data": record.data}
        )


def load_device_key(key_file: str | None, env_value: str | None) -> PrivateKey:
    """A device's key from a file of hex or the hex itself (from the environment)."""
    if key_file:
        return PrivateKey.from_hex(Path(key_file).read_text().strip())
    if env_value:
        return PrivateKey.from_hex(env_value.strip())
    raise SystemExit("give the device a key: --key-file FILE or $M2MPAY_DEVICE_KEY (hex)")
