"""A simulated lamp on the device bus, speaking only the public protocol: JSON over a
WebSocket (`m2mpay.gateway.bus_messages` describes every message).

The lamp logs in with its own key, registers a `light` service (seconds of light at
a price), and lights for exactly the seconds it is commanded, on its own clock:
`speed` simulated seconds pass per real second, so a test can buy a minute of light
in a second. Sessions are served one at a time, oldest first; each one's meter is
the seconds it was lit, reported in `device_status` as whole seconds as they pass.
It acknowledges every command, sends a `telemetry` record at each switch and
re-sends those not yet acknowledged after a reconnect, and reconnects by itself
(and then gets the commands it missed) until stopped.

    python -m m2mpay.devices.lamp --url ws://127.0.0.1:8402/v1/devices/ws \\
        --key-file lamp.key --price 1000000000000000 --asset 0x…

The key file (or $M2MPAY_DEVICE_KEY) holds the lamp's private key as hex.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from m2mpay.crypto import Address, PrivateKey
from m2mpay.gateway.bus_messages import login_digest

__all__ = ["Lamp", "LampSession", "main"]

log = logging.getLogger("m2mpay.devices.lamp")

SERVICE: Final = "light"
_EPSILON: Final = 1e-9  # float sums that land a hair under a whole second still count


@dataclass
class LampSession:
    """One session's light: lit up to `limit` seconds in all; `lit` so far."""

    session: str  # 0x-hex id, as commands name it
    limit: float = 0.0
    lit: float = 0.0
    ended: bool = False
    reported: int = -1  # the whole seconds last reported

    @property
    def seconds(self) -> int:
        return int(self.lit + _EPSILON)

    @property
    def running(self) -> bool:
        return not self.ended and self.lit < self.limit


@dataclass
class _Telemetry:
    seq: int
    at_ms: int
    data: dict[str, Any]


class Lamp:
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        key: PrivateKey,
        *,
        price: int,
        asset: Address,
        name: str = "lamp",
        speed: float = 1.0,
        tick_s: float = 0.01,
        reconnect_s: float = 0.2,
        server: Address | None = None,
    ) -> None:
        if speed <= 0 or tick_s <= 0:
            raise ValueError("speed and tick must be positive")
        self.url = url
        self.key = key
        self.price = price
        self.asset = asset
        self.name = name
        self.speed = speed
        self.tick_s = tick_s
        self.reconnect_s = reconnect_s
        self.server = server  # pinned: refuse a bus with another address
        self.sessions: dict[str, LampSession] = {}  # in the order they began
        self.is_on = False
        self.lit_seconds = 0.0  # on the lamp's clock, over all sessions
        self.switches: list[bool] = []
        self.commands: list[dict[str, Any]] = []  # every command received, repeats too
        self.logins = 0
        self.errors: list[dict[str, Any]] = []
        self.refused: list[Address] = []  # buses that were not the pinned one
        self.connected = asyncio.Event()
        self._online = True
        self._websocket: ClientConnection | None = None
        self._telemetry_seq = 0
        self._unacked: dict[int, _Telemetry] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def address(self) -> Address:
        return self.key.address

    def session_seconds(self, session: bytes | str) -> float:
        """Seconds lit in a session (0 if the lamp never heard of it)."""
        key = session if isinstance(session, str) else "0x" + session.hex()
        found = self.sessions.get(key.lower())
        return found.lit if found is not None else 0.0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._connect_loop()),
            asyncio.ensure_future(self._clock()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._hang_up()

    async def __aenter__(self) -> Lamp:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def go_offline(self) -> None:
        """Drop the connection and stay away (the light goes on by its own clock)."""
        self._online = False
        await self._hang_up()

    def go_online(self) -> None:
        self._online = True

    async def _hang_up(self) -> None:
        websocket, self._websocket = self._websocket, None
        self.connected.clear()
        if websocket is not None:
            await websocket.close()

    # ------------------------------------------------------------------ the connection

    async def _connect_loop(self) -> None:
        while True:
            if self._online:
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
                    log.info("lamp %s: connection ended: %s", self.address, exc)
                finally:
                    self._websocket = None
                    self.connected.clear()
            await asyncio.sleep(self.reconnect_s)

    async def _send(self, message: dict[str, Any]) -> None:
        websocket = self._websocket
        if websocket is not None:
            with contextlib.suppress(ConnectionClosed):
                await websocket.send(json.dumps(message))

    async def _serve(self, websocket: ClientConnection) -> None:
        hello = json.loads(await websocket.recv())
        if hello.get("type") != "challenge":
            log.warning("lamp %s: the bus did not send a challenge: %s", self.address, hello)
            return
        server = Address(hello["server"])
        if self.server is not None and server != self.server:
            self.refused.append(server)
            log.warning("lamp %s: refusing bus %s (expected %s)", self.address, server, self.server)
            await websocket.close()
            return
        challenge = bytes.fromhex(hello["challenge"][2:])
        signature = self.key.sign_digest(login_digest(server, challenge, self.address))
        self._websocket = websocket
        await self._send(
            {
                "type": "login",
                "address": self.address.checksum,
                "challenge": hello["challenge"],
                "signature": "0x" + signature.hex(),
            }
        )
        async for raw in websocket:
            await self._on_message(json.loads(raw))

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "welcome":
            self.logins += 1
            stored = int(message["telemetry_seq"])
            self._telemetry_seq = max(self._telemetry_seq, stored)
            for seq in [seq for seq in self._unacked if seq <= stored]:
                del self._unacked[seq]  # the bus has it: the ack was lost with the link
            await self._send(
                {
                    "type": "device_register",
                    "name": self.name,
                    "services": [
                        {
                            "name": SERVICE,
                            "unit": "s",
                            "price": str(self.price),
                            "asset": self.asset.checksum,
                            "kind": "actuation",
                        }
                    ],
                }
            )
            for record in sorted(self._unacked.values(), key=lambda r: r.seq):
                await self._send_telemetry(record)
            await self._report()
        elif kind == "registered":
            self.connected.set()
        elif kind == "command":
            await self._execute(message)
        elif kind == "telemetry_ack":
            self._unacked.pop(int(message["seq"]), None)
        elif kind == "error":
            self.errors.append(message)
            log.warning("lamp %s: the bus says %s", self.address, message)

    async def _execute(self, command: dict[str, Any]) -> None:
        self.commands.append(command)
        if command.get("service") != SERVICE:
            await self._ack(command, f"no service {command.get('service')!r}")
            return
        key = str(command["session"]).lower()
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = LampSession(key)
        action = command["action"]
        if action == "on" and not session.ended:
            session.limit = max(session.limit, float(command["until_units"]))
        elif action in ("off", "end"):
            session.limit = session.lit  # stop at once, whatever was allowed
            session.ended = session.ended or action == "end"
        await self._tick(0.0)  # switch now, not at the next tick
        await self._ack(command, None)

    async def _ack(self, command: dict[str, Any], error: str | None) -> None:
        ack: dict[str, Any] = {"type": "command_ack", "id": command["id"], "ok": error is None}
        if error is not None:
            ack["error"] = error
        await self._send(ack)

    async def _report(self) -> None:
        meters = []
        for session in self.sessions.values():
            session.reported = session.seconds
            meters.append(
                {
                    "session": session.session,
                    "service": SERVICE,
                    "delivered": session.seconds,
                    "active": session.running and self.is_on,
                }
            )
        await self._send(
            {
                "type": "device_status",
                "state": "on" if self.is_on else "off",
                "sessions": meters[-256:],
                "detail": {"lit_s": round(self.lit_seconds, 3)},
            }
        )

    async def _send_telemetry(self, record: _Telemetry) -> None:
        await self._send(
            {"type": "telemetry", "seq": record.seq, "at_ms": record.at_ms, "data": record.data}
        )

    # ------------------------------------------------------------------ the lamp's clock

    def _advance(self, seconds: float) -> tuple[bool, bool]:
        """Light the oldest session with time left for `seconds`; returns whether the
        lamp switched and whether a session's whole seconds moved."""
        moved = False
        for session in self.sessions.values():
            if seconds <= 0:
                break
            if session.running:
                step = min(seconds, session.limit - session.lit)
                session.lit += step
                self.lit_seconds += step
                seconds -= step
                moved = moved or session.seconds != session.reported
        on = any(s.running for s in self.sessions.values())
        switched = on != self.is_on
        if switched:
            self.is_on = on
            self.switches.append(on)
        return switched, moved

    async def _clock(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            await self._tick((now - last) * self.speed)
            last = now

    async def _tick(self, seconds: float) -> None:
        """Let `seconds` of lamp time pass, then tell the bus what changed."""
        switched, moved = self._advance(seconds)
        if switched:
            self._telemetry_seq += 1
            record = _Telemetry(
                self._telemetry_seq,
                int(time.time() * 1000),
                {"on": self.is_on, "lit_s": round(self.lit_seconds, 3)},
            )
            self._unacked[record.seq] = record
            await self._send_telemetry(record)
        if switched or moved:
            await self._report()


def _key(key_file: str | None) -> PrivateKey:
    if key_file:
        return PrivateKey.from_hex(Path(key_file).read_text().strip())
    env = os.environ.get("M2MPAY_DEVICE_KEY")
    if env:
        return PrivateKey.from_hex(env.strip())
    raise SystemExit("give the lamp a key: --key-file FILE or $M2MPAY_DEVICE_KEY (hex)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m m2mpay.devices.lamp", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("M2MPAY_BUS_URL"), required=False)
    parser.add_argument("--key-file", default=os.environ.get("M2MPAY_DEVICE_KEY_FILE"))
    parser.add_argument("--price", type=int, required=True, help="per second, smallest unit")
    parser.add_argument("--asset", required=True, help="the token's address")
    parser.add_argument("--name", default="lamp")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated s per real s")
    parser.add_argument("--server", default=None, help="the bus's address, to pin it")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url (or $M2MPAY_BUS_URL) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    lamp = Lamp(
        args.url,
        _key(args.key_file),
        price=args.price,
        asset=Address(args.asset),
        name=args.name,
        speed=args.speed,
        server=Address(args.server) if args.server else None,
    )

    async def run() -> None:
        async with lamp:
            print(f"lamp {lamp.address} → {lamp.url}", file=sys.stderr)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
