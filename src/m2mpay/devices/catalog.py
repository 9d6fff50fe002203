"""The simulated devices `m2mpay device run NAME` starts: one entry each in
`RUNNABLE_DEVICES`, saying what the device sells and its defaults (price, unit, power
curve). A new simulated device joins the command by adding its entry here (and, for
a new kind of program, its builder in `m2mpay.devices.runner`).

Kept free of the devices themselves: the CLI reads it on every start, and the bus
client loads the chain with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "CURVES",
    "ENERGY_UNITS",
    "RUNNABLE_DEVICES",
    "Curve",
    "DeviceModel",
    "Program",
]

Curve = Literal["constant", "charging", "wind"]
CURVES: Final[tuple[Curve, ...]] = ("constant", "charging", "wind")
# What a device program is: a metered device (`MeteredDevice`) with one energy
# service on a power curve, the lamp (`Lamp`), lit for the seconds paid, or the smart
# plug (`SmartPlug`), which publishes a feed's topics over MQTT instead of the bus.
Program = Literal["metered", "lamp", "plug"]

# An energy unit and the Wh it is.
ENERGY_UNITS: Final[Mapping[str, float]] = {"Wh": 1.0, "kWh": 1000.0}


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """A device `m2mpay device run` can start, and what it registers by default."""

    summary: str  # one line for --help
    service: str  # the registered service's name
    kind: Literal["energy", "actuation", "data"]
    price: int  # per unit (a plug: per hour), in the smallest unit of the node's token
    program: Program
    units: Mapping[str, float]  # the units it can meter in, the first its default
    curve: Curve = "constant"
    power_w: float = 0.0  # the curve's peak: a charger's maximum, a turbine's rating

    @property
    def unit(self) -> str:
        return next(iter(self.units))


def _energy(summary: str, service: str, price: int, curve: Curve, power_w: float) -> DeviceModel:
    return DeviceModel(summary, service, "energy", price, "metered", ENERGY_UNITS, curve, power_w)


RUNNABLE_DEVICES: Final[Mapping[str, DeviceModel]] = {
    # Prices per Wh: 0.30, 0.20 and 0.40 of a token (18 decimals) per kWh.
    "charger": _energy(
        "a charging point's outlet: sells the energy a car's battery draws (full power "
        "to 80 %, then tapering)",
        "charge", 3 * 10**14, "charging", 11_000.0,
    ),
    "turbine": _energy(
        "a wind turbine: sells its feed-in, swinging with the wind",
        "energy", 2 * 10**14, "wind", 40_000.0,
    ),
    "inverter": _energy(
        "a car's inverter: sells energy fed back to the grid (vehicle-to-grid)",
        "discharge", 4 * 10**14, "constant", 7_000.0,
    ),
    "lamp": DeviceModel(
        "a lamp: sells seconds of light", "light", "actuation", 10**15, "lamp", {"s": 1.0}
    ),
    # 0.0036 of a token an hour: 10**12 of its smallest unit a second.
    "plug": DeviceModel(
        "a smart plug: sells its live power over MQTT by the second, its 1-minute average "
        "free (with --url/--token it publishes its feed on the node)",
        "live", "data", 36 * 10**14, "plug", {"s": 1.0}, "wind", 2_000.0,
    ),
}  # fmt: skip
