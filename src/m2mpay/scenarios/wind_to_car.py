"""`wind-to-car`: a charger resells a wind turbine's energy with a commission per Wh;
a car buys from the charger until its budget runs out, the energy flowing from the
turbine's meter over the line through the charger's relay meter. The charger's node
reconciles the sale with its purchase, both channels are closed cooperatively, and
each party finds on chain exactly its share: the car paid, the turbine was paid and
the charger kept its margin."""

from __future__ import annotations

from typing import Final

from m2mpay.client import ResaleView
from m2mpay.devices.metered import MeteredService
from m2mpay.devices.simulated import PowerLine, RelayMeter, wind_power
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.stage import Actor, until

__all__ = ["WindToCar"]

TOKEN: Final = 10**18
PRICE_PER_WH: Final = 2 * 10**14  # the turbine's: 0.20 token per kWh
COMMISSION_PER_WH: Final = 10**14  # the charger's: 0.10 token per kWh
WH: Final = 3_000  # what the car's budget buys
BUDGET: Final = WH * (PRICE_PER_WH + COMMISSION_PER_WH)
TURBINE_W: Final = 40_000.0


async def _reconciled(charger: Actor) -> ResaleView:
    """The charger's resale once its sale and the purchase behind it have stopped."""

    async def done() -> bool:
        [resale] = await charger.api.resales()
        phases = [(r.sale_phase, r.purchase_phase) for r in resale.reconciliations]
        return phases == [("stopped", "stopped")]

    await until(done, "the charger's reconciliation of the sale")
    [resale] = await charger.api.resales()
    return resale


class WindToCar(Scenario):
    name = "wind-to-car"
    title = "A charger resells wind power to a car, with a commission per Wh"
    unit = "Wh"

    async def play(self, play: Play) -> None:
        stage = play.stage
        car, charger, turbine = await play.cast("car", "charger", "turbine")
        line = PowerLine()  # the cable from the turbine's meter to the charger's
        wind = wind_power(TURBINE_W, gust_period_s=30)
        generator = await play.energy_meter(
            turbine, "generator", "energy", PRICE_PER_WH, wind, line
        )

        def relayed(_session: bytes) -> RelayMeter:
            return RelayMeter(line)

        relay = await play.metered(
            charger, "relay", MeteredService("charge", "Wh", PRICE_PER_WH, stage.token, relayed)
        )
        wind_offer = await play.offer_energy(turbine, generator, "energy", PRICE_PER_WH)
        play.say(f"turbine offers wind energy at {PRICE_PER_WH / TOKEN * 1000:.2f} token/kWh")
        source = await play.find_offer(turbine, wind_offer)
        resale = await charger.api.publish_resale(
            source,
            commission=COMMISSION_PER_WH,
            device=f"{relay.address.checksum}/charge",
            endpoint=turbine.endpoint,
            deposit=5 * TOKEN,
        )
        play.say(
            f"charger resells it at {int(resale.offer.price) / TOKEN * 1000:.2f} token/kWh "
            f"(commission {COMMISSION_PER_WH / TOKEN * 1000:.2f})"
        )
        play.say(f"car buys with a budget of {BUDGET / TOKEN:.4f} tokens")
        session = await car.api.start_session(
            resale.offer, endpoint=charger.endpoint, deposit=5 * TOKEN, budget=BUDGET
        )
        bought = await play.watch_session(car, session.session_id, WH)
        play.say(f"session stopped: {bought.stop_reason}")
        resale = await _reconciled(charger)
        [report] = resale.reconciliations
        purchase = await charger.api.session(report.purchase_id)
        sold_upstream = await turbine.api.session(report.purchase_id)
        play.say(
            f"reconciled: bought {report.units_bought} Wh, sold {report.units_sold} Wh, "
            f"margin {int(report.margin) / TOKEN:.4f} tokens"
        )
        car_phase = await play.close_channel(car, bought.channel_id)
        charger_phase = await play.close_channel(charger, purchase.channel_id)

        paid_down = int(report.received_downstream)
        paid_up = int(report.paid_upstream)
        margin = int(report.margin)
        play.report.units = bought.forward.units
        play.report.paid = int(bought.forward.paid)
        play.report.extra["turbine → charger"] = (
            f"{report.units_bought} Wh for {paid_up / TOKEN:.6f} tokens"
        )
        play.report.extra["charger → car"] = (
            f"{report.units_sold} Wh for {paid_down / TOKEN:.6f} tokens"
        )
        play.report.extra["charger's margin"] = f"{margin / TOKEN:.6f} tokens"

        play.equal("car's stop reason", bought.stop_reason, "budget exhausted")
        play.equal("car paid its budget", int(bought.forward.paid), BUDGET)
        play.check("reconciliation balanced", report.balanced, "")
        play.equal("Wh bought = Wh sold", report.units_bought, report.units_sold)
        play.equal("Wh the car got = Wh sold", bought.forward.units, report.units_sold)
        play.equal("margin = commission × Wh", margin, COMMISSION_PER_WH * report.units_sold)
        play.equal("car's payment = received downstream", int(bought.forward.paid), paid_down)
        play.equal("turbine's view of the purchase", int(sold_upstream.forward.paid), paid_up)
        play.check("both sessions countersigned", bought.countersigned, "")
        play.equal("channels closed cooperatively", (car_phase, charger_phase), ("closed",) * 2)
        await play.check_balances({"car": -paid_down, "charger": margin, "turbine": paid_up})
