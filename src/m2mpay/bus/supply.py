"""A device on the bus as the `Supply` of one session: permits become commands, the
device's meter readings become the session's reports.

The session grants a permit, units in all; the supply turns each increase into an
`on` command with the new absolute target and a drop (the session stopping) into an
`off`, and the end of the session into `end`. The device meters itself and reports
units delivered in the session; the supply passes them on, never past what it ever
permitted (a device cannot bill more than it was allowed to deliver).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from m2mpay.crypto import Address
from m2mpay.stream.supply import MeterReport, Supply

__all__ = ["CommandSink", "DeviceSupply"]


class CommandSink(Protocol):
    """What a supply needs of the bus."""

    def command(self, supply: DeviceSupply, action: str, until_units: int, units: int) -> None:
        """Queue a command durably and send it when the device is there, in order."""

    def attach(self, supply: DeviceSupply) -> None:
        """Route the device's readings for the supply's session to it."""

    def detach(self, supply: DeviceSupply) -> None: ...


class DeviceSupply(Supply):
    """See the module docstring; made by `DeviceBus.supply_for`."""

    def __init__(self, sink: CommandSink, device: Address, service: str, session: bytes) -> None:
        self._sink = sink
        self.device = device
        self.service = service
        self.session = session
        self._report: MeterReport | None = None
        self._delivered = 0
        self._read = 0  # the highest reading the device sent, permitted or not (yet)
        self._granted = 0  # the highest permit ever: what the device may have delivered
        self._target = 0  # what the last command let the device reach
        self._stopped = False

    @property
    def delivered(self) -> int:
        return self._delivered

    @property
    def permitted(self) -> int:
        return self._target

    async def start(self, report: MeterReport, delivered: int) -> None:
        self._report = report
        self._delivered = max(self._delivered, delivered)
        self._granted = max(self._granted, self._delivered)
        self._target = max(self._target, self._delivered)
        self._sink.attach(self)

    def permit(self, units: int) -> None:
        if self._stopped:
            return
        if units > self._granted:
            self._granted = units
            if self._read > self._delivered:
                # A reading held back by the old permit (a session resuming after a
                # restart): report it, but not from inside the session's dispatcher.
                asyncio.get_running_loop().call_soon(self._apply)
        if units > self._target:
            added = units - self._target
            self._target = units
            self._sink.command(self, "on", units, added)
        elif units < self._target:
            # A permit that drops is a stop: hold at what was delivered, at once.
            self._target = max(units, self._delivered)
            self._sink.command(self, "off", self._target, 0)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._sink.command(self, "end", self._delivered, 0)
        self._sink.detach(self)

    def reading(self, units: int) -> None:
        """The device says it delivered `units` in the session so far."""
        self._read = max(self._read, units)
        self._apply()

    def _apply(self) -> None:
        if self._report is None or self._stopped:
            return
        units = min(self._read, self._granted)
        if units > self._delivered:
            self._delivered = units
            self._report(units)
