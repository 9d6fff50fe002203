"""`ev-charging`: two chargers list their outlets in the service registry; a car finds
them by kind and place, leaves out any with a poor score, picks the cheaper, checks
its offer against the listing, opens a channel, pays for every packet of energy as it
flows until its battery is full, rates the charger on chain with the session's
receipt, and the channel is closed cooperatively; both find exactly the energy's
price moved on chain."""

from __future__ import annotations

from fractions import Fraction
from typing import Final

from m2mpay.client import ListedServiceView, OfferView
from m2mpay.devices.metered import MeteredDevice
from m2mpay.devices.simulated import charging_power
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.stage import Actor, until

__all__ = ["EvCharging", "charger_outlet"]

PRICE_PER_WH: Final = 3 * 10**14  # 0.30 token per kWh
RIVAL_PRICE_PER_WH: Final = 4 * 10**14  # the other charger's, nearer the car
TOKEN: Final = 10**18
CHARGER_W: Final = 11_000.0
BATTERY_WH: Final = 10_000
START_SOC: Final = 0.5
TO_FULL_WH: Final = int(BATTERY_WH * (1 - START_SOC))
# Geohashes: the car, the rival charger a few hundred metres off, ours a little further.
CAR_AT: Final = "u09tvqx"
RIVAL_AT: Final = "u09tvqz"
CHARGER_AT: Final = "u09tvw0"
MIN_SCORE: Final = Fraction(3)  # of 5: the car leaves out chargers rated worse


async def charger_outlet(
    play: Play, charger: Actor, price: int = PRICE_PER_WH
) -> tuple[MeteredDevice, OfferView]:
    """The charging point's outlet on its node's bus, offered for sale: it meters the
    energy a car's battery draws (full power to 80 %, then tapering) while its
    session permits."""
    battery = charging_power(CHARGER_W, BATTERY_WH, START_SOC)
    outlet = await play.energy_meter(charger, "outlet", "charge", price, battery)
    return outlet, await play.offer_energy(charger, outlet, "charge", price)


def pick(found: list[ListedServiceView]) -> ListedServiceView | None:
    """The car's choice: the cheapest of those not rated below `MIN_SCORE`."""
    fair = [s for s in found if s.score.exact is None or s.score.exact >= MIN_SCORE]
    return min(fair, key=lambda s: (s.price, s.listing_id), default=None)


class EvCharging(Scenario):
    name = "ev-charging"
    title = "A car finds a charger in the registry, charges, pays per Wh and rates it"
    unit = "Wh"

    async def list_outlets(self, play: Play, charger: Actor, rival: Actor) -> OfferView:
        outlet, offer = await charger_outlet(play, charger)
        self.outlet = outlet
        _, rival_offer = await charger_outlet(play, rival, RIVAL_PRICE_PER_WH)
        await charger.api.list_service(offer_id=offer.offer_id, location=CHARGER_AT)
        await rival.api.list_service(offer_id=rival_offer.offer_id, location=RIVAL_AT)
        play.say(
            f"two chargers list their outlets: {PRICE_PER_WH / TOKEN * 1000:.2f} and "
            f"{RIVAL_PRICE_PER_WH / TOKEN * 1000:.2f} token/kWh"
        )
        return offer

    async def play(self, play: Play) -> None:
        car, charger, rival = await play.cast("car", "charger", "rival-charger")
        offer = await self.list_outlets(play, charger, rival)

        async def both_indexed() -> bool:
            return len(await car.api.find_services(kind="energy", near=CAR_AT)) == 2

        await until(both_indexed, "the car's node to index both listings")
        found = await car.api.find_services(kind="energy", near=CAR_AT)
        chosen = pick(found)
        assert chosen is not None
        play.say(
            f"car finds {len(found)} chargers, nearest first; picks listing "
            f"{chosen.listing_id} at {chosen.distance_m} m for its price and score"
        )
        checked = await car.api.check_offer(chosen.listing_id)
        play.check("offer at the endpoint = listing", checked.matches, str(checked.differences))
        assert checked.offer is not None
        session = await car.api.start_session(
            checked.offer,
            endpoint=checked.peer_endpoint,
            deposit=5 * TOKEN,
            target_units=TO_FULL_WH,
        )
        play.say(f"channel {session.channel_id[:10]}… opened; energy flows")
        bought = await play.watch_session(car, session.session_id, TO_FULL_WH)
        sold = await charger.api.session(session.session_id)
        play.say(f"session stopped: {bought.stop_reason}")
        # Rated while the channel is open: the registry checks its state at the hub.
        rating = await car.api.rate(session.session_id, 5)
        play.say(f"car rates the charger 5/5 on chain; its score: {rating.score.average}")
        phase = await play.close_channel(car, bought.channel_id)

        paid = int(bought.forward.paid)
        play.report.units = bought.forward.units
        play.report.paid = paid
        play.equal("picked the cheaper charger", chosen.provider, charger.address)
        play.equal("its offer was the one listed", checked.offer.offer_id, offer.offer_id)
        play.equal("nearest listed first", found[0].provider, rival.address)
        play.equal("stop reason", bought.stop_reason, "target reached")
        play.equal("Wh delivered = battery's need", bought.forward.units, TO_FULL_WH)
        metered = self.outlet.delivered(session.session_id, "charge")
        play.equal("Wh metered by the outlet", metered, TO_FULL_WH)
        play.equal("paid = Wh × price", paid, TO_FULL_WH * PRICE_PER_WH)
        agreed = bought.countersigned and sold.forward == bought.forward
        play.check("both receipts signed and equal", agreed, f"{bought.forward}")
        rated = (rating.rated, rating.score.ratings, rating.score.value)
        play.equal(
            "charger rated once, weighted by the value paid", rated, (charger.address, 1, paid)
        )
        play.equal("channel closed cooperatively", phase, "closed")
        await play.check_balances({"car": -paid, "charger": paid, "rival-charger": 0})
