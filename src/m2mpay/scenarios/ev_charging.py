"""`ev-charging`: a car finds a charger's offer, opens a channel, pays for every
packet of energy as it flows until its battery is full, and the channel is closed
cooperatively; both find exactly the energy's price moved on chain."""

from __future__ import annotations

from typing import Final

from m2mpay.client import OfferView
from m2mpay.devices.metered import MeteredDevice
from m2mpay.devices.simulated import charging_power
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.stage import Actor

__all__ = ["EvCharging", "charger_outlet"]

PRICE_PER_WH: Final = 3 * 10**14  # 0.30 token per kWh
TOKEN: Final = 10**18
CHARGER_W: Final = 11_000.0
BATTERY_WH: Final = 10_000
START_SOC: Final = 0.5
TO_FULL_WH: Final = int(BATTERY_WH * (1 - START_SOC))


async def charger_outlet(play: Play, charger: Actor) -> tuple[MeteredDevice, OfferView]:
    """The charging point's outlet on its node's bus, offered for sale: it meters the
    energy a car's battery draws (full power to 80 %, then tapering) while its
    session permits."""
    battery = charging_power(CHARGER_W, BATTERY_WH, START_SOC)
    outlet = await play.energy_meter(charger, "outlet", "charge", PRICE_PER_WH, battery)
    return outlet, await play.offer_energy(charger, outlet, "charge", PRICE_PER_WH)


class EvCharging(Scenario):
    name = "ev-charging"
    title = "A car charges at a pole and pays per Wh"
    unit = "Wh"

    async def play(self, play: Play) -> None:
        car, charger = await play.cast("car", "charger")
        outlet, offer = await charger_outlet(play, charger)
        play.say(f"charger offers energy at {PRICE_PER_WH / TOKEN * 1000:.2f} token/kWh")
        found = await play.find_offer(charger, offer)
        play.say(f"car finds the offer; its battery needs {TO_FULL_WH} Wh to be full")
        session = await car.api.start_session(
            found, endpoint=charger.endpoint, deposit=5 * TOKEN, target_units=TO_FULL_WH
        )
        play.say(f"channel {session.channel_id[:10]}… opened; energy flows")
        bought = await play.watch_session(car, session.session_id, TO_FULL_WH)
        sold = await charger.api.session(session.session_id)
        play.say(f"session stopped: {bought.stop_reason}")
        phase = await play.close_channel(car, bought.channel_id)

        paid = int(bought.forward.paid)
        play.report.units = bought.forward.units
        play.report.paid = paid
        play.equal("stop reason", bought.stop_reason, "target reached")
        play.equal("Wh delivered = battery's need", bought.forward.units, TO_FULL_WH)
        metered = outlet.delivered(session.session_id, "charge")
        play.equal("Wh metered by the outlet", metered, TO_FULL_WH)
        play.equal("paid = Wh × price", paid, TO_FULL_WH * PRICE_PER_WH)
        agreed = bought.countersigned and sold.forward == bought.forward
        play.check("both receipts signed and equal", agreed, f"{bought.forward}")
        play.equal("channel closed cooperatively", phase, "closed")
        await play.check_balances({"car": -paid, "charger": paid})
