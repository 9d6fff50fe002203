"""What a running device tells its owner (`m2mpay device run`): joined, registered,
each session started, its units as they are delivered, stopped, and a lost bus.

`DeviceProgress` turns what the device hears (`DeviceListener`) into events, plain
dicts with an `event` name: one JSON line each for programs, or `line(event)` for
people. Units delivered are told at most every `every_s` seconds a session, and
once more, exactly, when it stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from m2mpay.crypto import Address
from m2mpay.devices.bus_client import BusClient, DeviceListener

__all__ = ["DeviceProgress", "PriceOf", "line"]

Event = dict[str, Any]


@dataclass
class _Session:
    service: str
    unit: str
    told: int = 0  # the units last told
    told_at: float = 0.0
    stopped: bool = False


class DeviceProgress(DeviceListener):
    """See the module docstring; `units` maps each service to its unit."""

    def __init__(
        self, say: Callable[[Event], None], units: dict[str, str], *, every_s: float = 1.0
    ) -> None:
        self.say = say
        self.units = units
        self.every_s = every_s
        self.sessions: dict[str, _Session] = {}
        self._connected = False
        self._reasons: set[str] = set()  # each reason a bus is unreachable, said once

    def registered(self, device: BusClient, server: Address) -> None:
        self._connected = True
        self._reasons.clear()
        services = device.services()
        self.say(
            {
                "event": "registered",
                "device": device.address.checksum,
                "node": server.checksum,
                "name": device.name,
                "services": services,
            }
        )

    def disconnected(self, device: BusClient, reason: str) -> None:
        if self._connected or reason not in self._reasons:
            self._reasons.add(reason)
            self.say({"event": "disconnected", "reason": reason, "was_registered": self._connected})
        self._connected = False

    def refused(self, device: BusClient, server: Address) -> None:
        if f"refused {server}" not in self._reasons:
            self._reasons.add(f"refused {server}")
            self.say({"event": "refused", "node": server.checksum})

    def bus_error(self, device: BusClient, message: dict[str, Any]) -> None:
        self.say(
            {"event": "bus_error", "code": message.get("code"), "message": message.get("message")}
        )

    def commanded(self, device: BusClient, command: dict[str, Any], error: str | None) -> None:
        session_id, service = str(command.get("session")), str(command.get("service"))
        session = self.sessions.get(session_id)
        if error is not None:
            self.say({"event": "command_refused", "session": session_id, "error": error})
            return
        if session is None:
            unit = self.units.get(service, "")
            session = self.sessions[session_id] = _Session(service, unit)
            self.say({"event": "session_started", "session": session_id, "service": service})
        if command.get("action") == "end" and not session.stopped:
            session.stopped = True
            units = device.delivered(session_id, service)
            self.say(
                {
                    "event": "session_stopped",
                    "session": session_id,
                    "service": service,
                    "units": units,
                    "unit": session.unit,
                }
            )

    def reported(self, device: BusClient, meters: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for meter in meters:
            session = self.sessions.get(str(meter.get("session")))
            units = int(meter.get("delivered", 0))
            if session is None or session.stopped or units == session.told:
                continue
            if now - session.told_at >= self.every_s:
                session.told, session.told_at = units, now
                self.say(
                    {
                        "event": "delivered",
                        "session": meter["session"],
                        "service": session.service,
                        "units": units,
                        "unit": session.unit,
                    }
                )


# Each event in words; `short` is the session's id cut, `services` and `lost` are
# made from the event's fields.
_SAID: Final[Mapping[str, str]] = {
    "starting": "{name} {device} joining node {node} at {bus}",
    "registered": "[bold]{name}[/] {device} registered on node {node}: {services}",
    "disconnected": "{lost}: {reason}; trying again",
    "refused": "refused the bus: it speaks for {node}, not the node asked",
    "bus_error": "the bus says: {code}: {message}",
    "command_refused": "session {short}: refused a command: {error}",
    "session_started": "session {short} started ({service})",
    "delivered": "session {short}: {units} {unit} delivered",
    "session_stopped": "session {short} stopped: {units} {unit} delivered",
    "stopped": "{device} stopped",
}


PriceOf = Callable[[Mapping[str, Any]], str]
"""A registered service's price per unit in words, from its `device_register` fields."""


def _smallest_units(service: Mapping[str, Any]) -> str:
    return f"{service['price']} per {service['unit']}"


def line(event: Event, price_of: PriceOf = _smallest_units) -> str:
    """An event in words, for people (Rich markup); prices as `price_of` says them (the
    CLI's in the node's token with its symbol, else in the smallest unit)."""
    fields = dict(event)
    fields["short"] = str(event.get("session", ""))[:12] + "…"
    fields["services"] = ", ".join(
        f"{s['name']} at {price_of(s)}" for s in event.get("services", ())
    )
    fields["lost"] = (
        "lost the node's bus" if event.get("was_registered") else "cannot reach the bus"
    )
    said = _SAID.get(event["event"])
    return said.format(**fields) if said else " ".join(f"{k}={v}" for k, v in event.items())
