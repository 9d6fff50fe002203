"""The reseller's phase of a value chain: a car buys from a charger that buys the supply
of each sale from a wind turbine, and the charger is SIGKILLed while both sessions run.

After the restart the sale must keep the one purchase behind it (never a second, and
never none), both sessions must end with receipts both signed and no unit delivered
beyond the credit window, the purchase must end with the sale, and each of the two
channels must pay exactly its session's receipts, its settlement equal to the newest
proofs."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Final

from m2mpay.bench.processes import PeerProcess
from m2mpay.torture.pair import BesidePair, Pair, payment_violation
from m2mpay.torture.phase import Facts
from m2mpay.torture.sessions import (
    BATCH,
    PRICE,
    RATE,
    beyond_window,
    exposure,
    flows,
    offer_energy,
    session_ends,
)
from m2mpay.torture.world import World

__all__ = ["ResaleCrash", "resale_violation"]

COMMISSION: Final = PRICE // 5
# The charger's two channels: it is the payee of the car's and the payer of its own.
_LEGS: Final = {"sale": ("down", "payee"), "purchase": ("up", "payer")}


class ResaleCrash(BesidePair):
    """The shared pair's payer is the car and its payee the turbine; the charger (the
    reseller, the victim) is a process of this phase."""

    name = "session.reseller"

    def __init__(self) -> None:
        super().__init__()
        self._source: dict[str, Any] = {}
        self._offer: dict[str, Any] = {}

    async def setup(self, world: World) -> None:
        self._world = world
        pair = await Pair.shared(world)
        directory = world.files("resale")
        await self._start_own(
            world.peer(
                "resale",
                "charger",
                world.keys.reseller,
                sessions=directory / "charger-sessions.sqlite3",
            )
        )
        self._source = await offer_energy(world, pair.payee)
        self._offer = (await self._resale())["offer"]

    async def _resale(self, **again: Any) -> dict[str, Any]:
        return await self.charger.call(
            {
                "cmd": "session_resale",
                "source": self._source,
                "commission": str(COMMISSION),
                "rate": RATE,
                **again,
            }
        )

    @property
    def charger(self) -> PeerProcess:
        """The reseller, the phase's own process and the one its trials kill."""
        return self.own

    def _legs(self) -> tuple[Pair, Pair]:
        """The car paying the charger, and the charger paying the turbine."""
        world, pair = self.world, self.shared_pair
        return Pair(world, pair.payer, self.charger), Pair(world, self.charger, pair.payee)

    def check(self, facts: Facts) -> str | None:
        return resale_violation(facts)

    async def trial(self, rng: random.Random) -> Facts:
        down, up = self._legs()
        car, turbine = down.payer, up.payee
        since = await self.world.ledger.block_number()
        channels = {"down": await down.open(), "up": await up.open()}
        target = rng.randint(4 * BATCH, 30 * BATCH)
        started = await car.call(
            {"cmd": "session_start", "offer": self._offer, "target_units": target}
        )
        sale = started["session"]
        await asyncio.sleep(rng.uniform(0.0, 1.2 * target / RATE))
        up_acked = await up.acked(channels["up"])
        await self.charger.kill()
        down_acked = await down.acked(channels["down"])
        await self.charger.start()
        # Offers are the application's: a restarted reseller resells again.
        await self._resale(offer=self._offer)
        facts: Facts = {
            "target": target,
            "up_acked": up_acked,
            "up_restored": await up.total("payer", channels["up"]),
            "down_acked": down_acked,
            "down_restored": await down.total("payee", channels["down"]),
        }
        facts |= await session_ends(sale, {"bought": car, "sold": self.charger}, "sale_")
        purchases = [
            view["session"]
            for view in (await self.charger.call({"cmd": "session_list"}))["sessions"]
            if view["supplies"] == sale
        ]
        facts["purchases"] = len(purchases)
        if purchases:
            sides = {"bought": self.charger, "sold": turbine}
            facts |= await session_ends(purchases[-1], sides, "purchase_")
        for process, role in ((car, "car"), (self.charger, "charger"), (turbine, "turbine")):
            facts[f"{role}_exposure"] = await exposure(process, role)
        for leg, pair in (("down", down), ("up", up)):
            settled = await pair.settled_facts(channels[leg], since)
            facts |= {f"{leg}_{key}": value for key, value in settled.items()}
        return facts


def resale_violation(facts: Facts) -> str | None:
    """The value chain's invariants, then each session's, then each channel's."""
    if facts["purchases"] != 1:
        return f"the sale had {facts['purchases']} purchases behind it, not one"
    for role in ("car", "charger", "turbine"):
        violation = beyond_window(role, facts[f"{role}_exposure"])
        if violation is not None:
            return violation
    for name, (leg, victim) in _LEGS.items():
        for side in ("bought", "sold"):
            if not (facts[f"{name}_{side}_stopped"] and facts[f"{name}_{side}_countersigned"]):
                return f"the {name} did not end with receipts both signed ({side} side)"
        bought, sold = flows(facts, f"{name}_")
        if bought != sold:
            return f"the sides disagree on the {name}: bought {bought}, sold {sold}"
        _, value, paid = sold
        if value != paid:
            return f"the {name} did not end paid in full: {sold}"
        received = facts[f"{leg}_received"]
        if received != paid:
            return f"the {name}'s channel moved {received}, its receipts say {paid}"
        prefix = f"{leg}_"
        leg_facts = {k[len(prefix) :]: v for k, v in facts.items() if k.startswith(prefix)}
        violation = payment_violation(victim, leg_facts)
        if violation is not None:
            return f"the {name}'s channel: {violation}"
    units, value, _ = flows(facts, "sale_")[1]
    if units != facts["target"] or value != units * (PRICE + COMMISSION):
        return f"the sale did not end at its target: {units} units for {value}"
    return None
