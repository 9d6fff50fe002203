"""A simulated lamp on the device bus, speaking only the public protocol: JSON over a
WebSocket (`m2mpay.bus.messages` describes every message).

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
import logging
import os
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final

from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices.bus_client import BusClient, load_device_key

__all__ = ["Lamp", "LampSession", "main"]

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


class Lamp(BusClient):
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
        super().__init__(url, key, name=name, reconnect_s=reconnect_s, server=server)
        self.price = price
        self.asset = asset
        self.speed = speed
        self.tick_s = tick_s
        self.sessions: dict[str, LampSession] = {}  # in the order they began
        self.is_on = False
        self.lit_seconds = 0.0  # on the lamp's clock, over all sessions
        self.switches: list[bool] = []

    def session_seconds(self, session: bytes | str) -> float:
        """Seconds lit in a session (0 if the lamp never heard of it)."""
        key = session if isinstance(session, str) else "0x" + session.hex()
        found = self.sessions.get(key.lower())
        return found.lit if found is not None else 0.0

    def delivered(self, session: bytes | str, service: str) -> int:
        return int(self.session_seconds(session) + _EPSILON) if service == SERVICE else 0

    # ------------------------------------------------------------------ the bus

    def services(self) -> list[dict[str, Any]]:
        return [
            {
                "name": SERVICE,
                "unit": "s",
                "price": str(self.price),
                "asset": self.asset.checksum,
                "kind": "actuation",
            }
        ]

    def background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._clock()]

    async def execute(self, command: dict[str, Any]) -> str | None:
        if command.get("service") != SERVICE:
            return f"no service {command.get('service')!r}"
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
        return None

    def meters(self) -> list[dict[str, Any]]:
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
        return meters

    def state(self) -> str:
        return "on" if self.is_on else "off"

    def detail(self) -> dict[str, Any]:
        return {"lit_s": round(self.lit_seconds, 3)}

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
            await self.record({"on": self.is_on, "lit_s": round(self.lit_seconds, 3)})
        if switched or moved:
            await self.report()


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
        load_device_key(args.key_file, os.environ.get("M2MPAY_DEVICE_KEY")),
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
