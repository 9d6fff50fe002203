"""`vehicle-to-grid`: a car charges from the grid over a channel both sides fund; a
local power market moves the price mid-session (the car accepts up to its limit),
and when supply runs short the grid reverses the flow: the car's inverter feeds
back and the grid pays for it. After a cooperative close each side's tokens on
chain moved by what was bought minus what was sold back."""

from __future__ import annotations

from typing import Final

from m2mpay.devices.simulated import constant_power
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.stage import ScenarioFailed, until

__all__ = ["VehicleToGrid"]

TOKEN: Final = 10**18
PRICE_PER_WH: Final = 3 * 10**14  # 0.30 token per kWh
REVERSE_PRICE_PER_WH: Final = 4 * 10**14  # what the grid pays for energy fed back
LIMIT_PRICE: Final = 5 * 10**14  # the most the car will pay
GRID_W: Final = 11_000.0
INVERTER_W: Final = 7_000.0
FED_BACK_WH: Final = 1_000  # how long the car feeds back before it leaves
# The local market: (after forward Wh, price per Wh, supply short).
MARKET: Final = ((800, 35 * 10**13, False), (1_600, 45 * 10**13, False), (2_400, 45 * 10**13, True))
TOTAL_WH: Final = MARKET[-1][0] + FED_BACK_WH


class VehicleToGrid(Scenario):
    name = "vehicle-to-grid"
    title = "A car buys grid energy at market prices and sells some back"
    unit = "Wh"

    async def play(self, play: Play) -> None:
        car, grid = await play.cast("car", "grid")
        outlet = await play.energy_meter(
            grid, "outlet", "charge", PRICE_PER_WH, constant_power(GRID_W)
        )
        inverter = await play.energy_meter(
            car, "inverter", "discharge", REVERSE_PRICE_PER_WH, constant_power(INVERTER_W)
        )
        signals: list[int] = []
        offer = await play.offer_energy(
            grid, outlet, "charge", PRICE_PER_WH, reverse_price=REVERSE_PRICE_PER_WH
        )
        play.say(
            f"grid offers energy at {PRICE_PER_WH / TOKEN * 1000:.2f} token/kWh and buys "
            f"it back at {REVERSE_PRICE_PER_WH / TOKEN * 1000:.2f}"
        )
        channel = await car.api.open_channel(
            grid.address, 5 * TOKEN, endpoint=grid.endpoint, peer_deposit=2 * TOKEN
        )
        play.say(f"car opens channel {channel.channel_id[:10]}…, funded on both sides")
        session = await car.api.start_session(
            offer,
            channel_id=channel.channel_id,
            allow_reverse=True,
            feed_back_device=f"{inverter.address.checksum}/discharge",
            limit_price=LIMIT_PRICE,
        )
        sid = session.session_id
        play.say(f"car charges, paying at most {LIMIT_PRICE / TOKEN * 1000:.2f} token/kWh")
        for after, price, short in MARKET:

            async def reached(after: int = after) -> bool:
                view = await car.api.session(sid)
                play.show_session(view, TOTAL_WH)
                if view.stopped_ms:
                    raise ScenarioFailed(f"session stopped early: {view.stop_reason}")
                return view.forward.units >= after

            await until(reached, f"{after} Wh to flow")
            if price != (signals[-1] if signals else PRICE_PER_WH):
                await grid.api.set_price(sid, price)
                signals.append(price)
                play.say(f"market at {after} Wh: price {price / TOKEN * 1000:.2f} token/kWh")
            if short:
                await grid.api.reverse(sid)
                play.say(f"market at {after} Wh: supply short, the grid reverses the flow")

        async def fed_back() -> bool:
            view = await car.api.session(sid)
            play.show_session(view, TOTAL_WH)
            return view.backward.units >= FED_BACK_WH

        await until(fed_back, f"the car to feed back {FED_BACK_WH} Wh")
        await car.api.stop_session(sid, reason="leaving")
        bought = await play.watch_session(car, sid, TOTAL_WH)
        sold = await grid.api.session(sid)
        play.say(
            f"car leaves: bought {bought.forward.units} Wh, fed back {bought.backward.units} Wh"
        )
        phase = await play.close_channel(car, bought.channel_id)

        forward, backward = bought.forward, bought.backward
        net = int(forward.paid) - int(backward.paid)
        play.report.units = forward.units
        play.report.paid = int(forward.paid)
        play.report.extra["grid → car"] = f"{forward.units} Wh for {int(forward.paid) / TOKEN:.6f}"
        play.report.extra["car → grid"] = (
            f"{backward.units} Wh for {int(backward.paid) / TOKEN:.6f}"
        )
        play.report.extra["price signals"] = ", ".join(f"{p / TOKEN * 1000:.2f}" for p in signals)
        play.equal("price changes accepted", int(bought.price), signals[-1])
        play.check("session reversed", bought.reversed, "")
        play.check("energy fed back", backward.units > 0, f"{backward.units} Wh")
        play.equal("grid paid for the feed-back", int(backward.paid), int(backward.value))
        play.equal("car paid for the charge", int(forward.paid), int(forward.value))
        play.equal(
            "fed back at the reverse price", backward.value, backward.units * REVERSE_PRICE_PER_WH
        )
        agreed = bought.countersigned and (sold.forward, sold.backward) == (forward, backward)
        play.check("both receipts signed and equal", agreed, f"{forward} / {backward}")
        play.equal("channel closed cooperatively", phase, "closed")
        await play.check_balances({"car": -net, "grid": net})
