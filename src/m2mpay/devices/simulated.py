"""Simulated devices: an energy meter on a power curve, a timer for actuation, a
message counter for data feeds, and a relay meter for resale along a value chain.

Time-driven devices advance together on one `Simulation` clock (one task for
any number of them), `speed` simulated seconds per real second, so a test can
charge a car in a second and a benchmark can run a thousand meters cheaply.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from m2mpay.lifecycle import cancel_and_wait
from m2mpay.stream.supply import MeterReport, PermitCount, Supply

__all__ = [
    "ActuationTimer",
    "EnergyMeter",
    "MessageCounter",
    "PowerCurve",
    "PowerLine",
    "RelayMeter",
    "Simulation",
    "charging_power",
    "constant_power",
    "power_curve",
    "wind_power",
]

# Watts drawn or produced, given the simulated seconds since the start and the Wh so far.
PowerCurve = Callable[[float, float], float]


def constant_power(watts: float) -> PowerCurve:
    return lambda _elapsed, _wh: watts


def wind_power(rated_w: float, *, gust_period_s: float = 60.0, calm: float = 0.3) -> PowerCurve:
    """A turbine's output swinging between `calm`×rated and rated with the wind."""

    def power(elapsed: float, _wh: float) -> float:
        swing = (1 + math.sin(2 * math.pi * elapsed / gust_period_s)) / 2
        return rated_w * (calm + (1 - calm) * swing)

    return power


def charging_power(max_w: float, capacity_wh: float, start_soc: float) -> PowerCurve:
    """A battery's intake: full power up to 80 % charge, then tapering (constant
    voltage) down to a twentieth of it until full, then nothing."""

    def power(_elapsed: float, wh: float) -> float:
        soc = start_soc + wh / capacity_wh
        if soc >= 1.0:
            return 0.0
        if soc <= 0.8:
            return max_w
        return max_w * max((1.0 - soc) / 0.2, 0.05)

    return power


def power_curve(
    name: str, watts: float, *, battery_wh: float = 60_000.0, start_soc: float = 0.2
) -> PowerCurve:
    """The curve a device's owner names (`constant`, `charging`, `wind`) at `watts` peak;
    the charging curve fills a battery of `battery_wh` that arrives `start_soc` full."""
    if name == "charging":
        return charging_power(watts, battery_wh, start_soc)
    if name == "wind":
        return wind_power(watts)
    if name == "constant":
        return constant_power(watts)
    raise ValueError(f"no power curve named {name!r}")


class Simulation:
    """One clock for simulated devices; see the module docstring."""

    def __init__(self, *, step_s: float = 0.05, speed: float = 1.0) -> None:
        if step_s <= 0 or speed <= 0:
            raise ValueError("step and speed must be positive")
        self.step_s = step_s
        self.speed = speed
        self._devices: set[_TimedDevice] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, device: _TimedDevice) -> None:
        self._devices.add(device)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def discard(self, device: _TimedDevice) -> None:
        self._devices.discard(device)

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.step_s)
            now = time.monotonic()
            elapsed = (now - last) * self.speed
            last = now
            for device in list(self._devices):
                device.advance(elapsed)


class _MeteredSupply(PermitCount, Supply):
    """A meter that never passes its permit, reporting each whole unit it adds."""

    async def start(self, report: MeterReport, delivered: int) -> None:
        self.open(report, delivered)

    async def stop(self) -> None:
        self.close()


class _TimedDevice(_MeteredSupply):
    def __init__(self, simulation: Simulation) -> None:
        super().__init__()
        self._simulation = simulation

    async def start(self, report: MeterReport, delivered: int) -> None:
        await super().start(report, delivered)
        self._simulation.add(self)

    async def stop(self) -> None:
        await super().stop()
        self._simulation.discard(self)

    def advance(self, seconds: float) -> None:
        raise NotImplementedError


class EnergyMeter(_TimedDevice):
    """Energy through a contactor: `power(elapsed, wh)` watts flow while the permit
    allows, in units of `wh_per_unit` Wh; the contactor opens at the permit."""

    def __init__(
        self,
        simulation: Simulation,
        power: PowerCurve,
        *,
        wh_per_unit: float = 1.0,
        line: PowerLine | None = None,
    ) -> None:
        super().__init__(simulation)
        self._power = power
        self._wh_per_unit = wh_per_unit
        self._line = line
        self._elapsed = 0.0
        self.energy_wh = 0.0

    async def start(self, report: MeterReport, delivered: int) -> None:
        await super().start(report, delivered)
        self.energy_wh = max(self.energy_wh, self._units * self._wh_per_unit)

    def advance(self, seconds: float) -> None:
        self._elapsed += seconds
        limit = self._permit if self._line is None else min(self._permit, self._line.limit)
        if not self.running or self._units >= limit:
            return
        watts = max(0.0, self._power(self._elapsed, self.energy_wh))
        cap = limit * self._wh_per_unit
        self.energy_wh = min(cap, self.energy_wh + watts * seconds / 3600.0)
        # A hair of tolerance so that float sums landing just under a whole unit count.
        self._reach(int(self.energy_wh / self._wh_per_unit + 1e-9))
        if self._line is not None:
            self._line.feed(self._units)


class ActuationTimer(_TimedDevice):
    """An actuator switched on while seconds remain paid: a lamp lit for exactly the
    time bought. `on_switch(on)` is told each time it switches."""

    def __init__(
        self, simulation: Simulation, *, on_switch: Callable[[bool], None] | None = None
    ) -> None:
        super().__init__(simulation)
        self._on_switch = on_switch
        self._seconds = 0.0
        self.is_on = False

    def _switch(self, on: bool) -> None:
        if on != self.is_on:
            self.is_on = on
            if self._on_switch is not None:
                self._on_switch(on)

    def permit(self, units: int) -> None:
        super().permit(units)
        self._switch(self.running)

    async def stop(self) -> None:
        await super().stop()
        self._switch(False)

    def advance(self, seconds: float) -> None:
        if not self.running:
            self._switch(False)
            return
        self._switch(True)
        self._seconds = min(float(self._permit), max(self._seconds, self._units) + seconds)
        self._reach(int(self._seconds + 1e-9))
        self._switch(self.running)


class MessageCounter(_MeteredSupply):
    """A data feed's gate: a message passes (`admit`) only while the permit has room,
    and each one that passes is a unit delivered; one that does not is held back."""


class PowerLine:
    """A cable from a source's meter to a reseller's meter (a turbine to a charger)
    that stores nothing: the source feeds only as far as the far end may draw, and
    what it feeds arrives at once."""

    def __init__(self) -> None:
        self.limit = 0  # units the far end may draw in the current session
        self.fed = 0  # units the source has fed in the current session
        self._far_end: Callable[[int], None] | None = None

    def connect(self, far_end: Callable[[int], None], *, resumed: bool = False) -> None:
        """A new session at the far end: counts start again from zero; or, `resumed`,
        the far end's meter restarted within its session and the counts go on."""
        if not resumed:
            self.limit = self.fed = 0
        self._far_end = far_end

    def feed(self, units: int) -> None:
        self.fed = units
        if self._far_end is not None:
            self._far_end(units)


class RelayMeter(_MeteredSupply):
    """The meter of a reseller on a `PowerLine` (a charger between a turbine and a car):
    it passes on what the line brings, and lets the line bring only what its own
    buyer's permit allows."""

    def __init__(self, line: PowerLine) -> None:
        super().__init__()
        self._line = line

    async def start(self, report: MeterReport, delivered: int) -> None:
        await super().start(report, delivered)
        self._line.connect(self._reach, resumed=delivered > 0)

    def permit(self, units: int) -> None:
        super().permit(units)
        self._line.limit = self._permit
        # What came through while this meter was not read (its process restarted) is
        # on the line's own count, as on a hardware meter's register.
        self._reach(self._line.fed)
