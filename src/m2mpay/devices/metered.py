"""A device on the bus whose services are meters: a charging point's outlet, a wind
turbine's feed-in, a car's inverter feeding the grid back.

Each service makes one `Supply` per session (`m2mpay.devices.simulated` has energy
meters on power curves, a relay meter on a power line, timers; a real device puts
its contactor and meter behind the same interface). A command `on` permits the
session's meter up to `until_units`, `off` holds it at what it delivered, `end`
stops it. Readings go to the bus in `device_status` (coalesced: at most one message
per event-loop turn), and a telemetry record marks each session's start and end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices.bus_client import BusClient
from m2mpay.lifecycle import run_in_background
from m2mpay.stream.supply import Supply

__all__ = ["MeteredDevice", "MeteredService"]


@dataclass(frozen=True, slots=True)
class MeteredService:
    """One service of the device and how to meter a session of it."""

    name: str  # `charge`, `feed-in`…
    unit: str  # `Wh`, `s`…
    price: int  # per unit, smallest unit of `asset`
    asset: Address
    meter: Callable[[bytes], Supply]  # a fresh meter for the session with this id
    kind: str = "energy"


@dataclass
class _Session:
    service: MeteredService
    supply: Supply
    delivered: int = 0
    permitted: int = 0
    ended: bool = False


class MeteredDevice(BusClient):
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        key: PrivateKey,
        services: Sequence[MeteredService],
        *,
        name: str,
        reconnect_s: float = 0.2,
        server: Address | None = None,
    ) -> None:
        super().__init__(url, key, name=name, reconnect_s=reconnect_s, server=server)
        self._services = {s.name: s for s in services}
        self.sessions: dict[tuple[str, str], _Session] = {}  # (0x session, service)
        self._report_due = False
        self._reports: set[asyncio.Task[None]] = set()

    def delivered(self, session: bytes | str, service: str) -> int:
        """Units the device metered in a session (0 if it never heard of it)."""
        key = session if isinstance(session, str) else "0x" + session.hex()
        found = self.sessions.get((key.lower(), service))
        return found.delivered if found is not None else 0

    def services(self) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "unit": s.unit,
                "price": str(s.price),
                "asset": s.asset.checksum,
                "kind": s.kind,
            }
            for s in self._services.values()
        ]

    async def execute(self, command: dict[str, Any]) -> str | None:
        service = self._services.get(str(command.get("service")))
        if service is None:
            return f"no service {command.get('service')!r}"
        key = (str(command["session"]).lower(), service.name)
        session = self.sessions.get(key)
        if session is None:
            supply = service.meter(bytes.fromhex(key[0][2:]))
            session = self.sessions[key] = _Session(service, supply)
            await supply.start(lambda units: self._reading(key, units), 0)
            await self.record({"session": key[0], "service": service.name, "event": "start"})
        if session.ended:
            return None  # a repeat after the end: nothing more flows
        action = command["action"]
        if action == "on":
            session.permitted = max(session.permitted, int(command["until_units"]))
        elif action == "off":
            session.permitted = session.supply.delivered
        if action in ("on", "off"):
            session.supply.permit(session.permitted)
        elif action == "end":
            session.ended = True
            await session.supply.stop()
            await self.record(
                {
                    "session": key[0],
                    "service": service.name,
                    "event": "end",
                    "delivered": session.delivered,
                }
            )
        self._report_soon()
        return None

    def meters(self) -> list[dict[str, Any]]:
        return [
            {
                "session": session_id,
                "service": service,
                "delivered": s.delivered,
                "active": not s.ended and s.delivered < s.permitted,
            }
            for (session_id, service), s in self.sessions.items()
        ]

    def state(self) -> str:
        active = any(m["active"] for m in self.meters())
        return "delivering" if active else "idle"

    def _reading(self, key: tuple[str, str], units: int) -> None:
        self.sessions[key].delivered = units
        self._report_soon()

    def _report_soon(self) -> None:
        if not self._report_due:
            self._report_due = True
            asyncio.get_running_loop().call_soon(self._spawn_report)

    def _spawn_report(self) -> None:
        self._report_due = False
        run_in_background(self._reports, self.report())
