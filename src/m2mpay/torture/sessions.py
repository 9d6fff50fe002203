"""Phases of a metered session: SIGKILL the buyer or the seller while units and
payments flow; the session must still end with receipts both signed, no unit
delivered beyond the credit window, and the channel paying exactly the receipts."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from typing import Any, Final

from m2mpay.bench.processes import PeerProcess
from m2mpay.errors import M2MPayError
from m2mpay.torture.pair import Pair, PairPhase, payment_violation
from m2mpay.torture.phase import Facts
from m2mpay.torture.world import TortureError, World, until

__all__ = [
    "BATCH",
    "PRICE",
    "RATE",
    "WINDOW",
    "SessionCrash",
    "beyond_window",
    "exposure",
    "flows",
    "offer_energy",
    "session_ends",
    "session_violation",
]

PRICE: Final = 10**12  # per unit (1 Wh)
WINDOW: Final = 20  # units the seller delivers ahead of payment
BATCH: Final = 5
RATE: Final = 60  # units per second from the seller's simulated meter
_ROLE: Final = {"buyer": "payer", "seller": "payee"}
_FLOW: Final = ("units", "value", "paid")


async def offer_energy(world: World, seller: PeerProcess) -> dict[str, Any]:
    """The offer `seller` publishes: energy at `PRICE` per unit, delivered at `RATE`."""
    offered = await seller.call(
        {
            "cmd": "session_offer",
            "asset": str(world.token.address),
            "price": str(PRICE),
            "window": WINDOW,
            "batch": BATCH,
            "rate": RATE,
        }
    )
    offer: dict[str, Any] = offered["offer"]
    return offer


async def session_ends(session: str, sides: Mapping[str, PeerProcess], prefix: str = "") -> Facts:
    """Each side's final view of the session (`sides`: bought and sold), once it has
    stopped or after `PATIENCE_S`: the forward flow, stopped, countersigned."""
    facts: Facts = {}
    for side, process in sides.items():

        async def view(p: PeerProcess = process) -> dict[str, Any]:
            return await p.call({"cmd": "session_info", "session": session})

        with contextlib.suppress(TortureError):
            await until(view, lambda v: v["phase"] == "stopped", what=f"{prefix}{side} stopped")
        seen = await view()
        for key in _FLOW:
            facts[f"{prefix}{side}_{key}"] = int(seen["forward"][key])
        facts[f"{prefix}{side}_stopped"] = int(seen["phase"] == "stopped")
        facts[f"{prefix}{side}_countersigned"] = int(bool(seen["countersigned"]))
    return facts


async def exposure(process: PeerProcess, who: str) -> int:
    """The most units `process` saw delivered and unpaid (or paid and undelivered)."""
    try:
        stats = await process.call({"cmd": "session_stats"})
    except M2MPayError as exc:
        raise TortureError(f"session_stats of the {who}: {exc}") from exc
    return int(stats["max_exposure_units"])


def flows(facts: Facts, prefix: str = "") -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(units, value, paid) as the buyer saw them, and as the seller did."""
    return tuple(facts[f"{prefix}bought_{key}"] for key in _FLOW), tuple(
        facts[f"{prefix}sold_{key}"] for key in _FLOW
    )


def beyond_window(who: str, units: int) -> str | None:
    if units > WINDOW:
        return (
            f"units delivered beyond the credit window: the {who} saw "
            f"{units} units unpaid, the window is {WINDOW}"
        )
    return None


class SessionCrash(PairPhase):
    """The buyer (the payer of the pair) buys a target of units from the seller."""

    kind = "session"

    def __init__(self, victim: str) -> None:
        super().__init__(victim)
        self._offer: dict[str, Any] = {}

    async def _share(self, world: World) -> Pair:
        pair = await Pair.shared(world)
        self._offer = await offer_energy(world, pair.payee)
        return pair

    def check(self, facts: Facts) -> str | None:
        return session_violation(self.victim, facts)

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        since = await self.world.ledger.block_number()
        channel = await pair.open()
        target = rng.randint(4 * BATCH, 30 * BATCH)
        started = await pair.payer.call(
            {"cmd": "session_start", "offer": self._offer, "target_units": target}
        )
        session = started["session"]
        # Anywhere from the first reports to the last receipts.
        await asyncio.sleep(rng.uniform(0.0, 1.2 * target / RATE))
        role = _ROLE[self.victim]
        acked = await pair.crash(pair.process(role), channel)
        if role == "payee":
            # Offers are the application's: a restarted seller publishes its offer again.
            await pair.payee.call({"cmd": "session_offer", "offer": self._offer, "rate": RATE})
        facts: Facts = {
            "target": target,
            "acked": acked,
            "restored": await pair.total(role, channel),
        }
        facts |= await session_ends(session, {"bought": pair.payer, "sold": pair.payee})
        facts["bought_exposure"] = await exposure(pair.payer, "payer")
        facts["sold_exposure"] = await exposure(pair.payee, "payee")
        return facts | await pair.settled_facts(channel, since)


def session_violation(victim: str, facts: Facts) -> str | None:
    """The session invariants, then the payment invariants of its channel."""
    for name, side in (("bought", "buyer"), ("sold", "seller")):
        violation = beyond_window(f"{side}'s side", facts[f"{name}_exposure"])
        if violation is not None:
            return violation
        if not (facts[f"{name}_stopped"] and facts[f"{name}_countersigned"]):
            return f"the {name} side's session did not end with receipts both signed"
    bought, sold = flows(facts)
    if bought != sold:
        return f"the sides disagree on the session: bought {bought}, sold {sold}"
    units, value, paid = sold
    if units != facts["target"] or value != paid or value != units * PRICE:
        return f"the session did not end paid in full at its target: {sold}"
    if facts["received"] < paid:
        return (
            f"service released without a durable payment: the receipts say {paid}, "
            f"the seller's channel holds {facts['received']}"
        )
    if facts["received"] != paid:
        return f"the channel moved {facts['received']}, the receipts say {paid}"
    return payment_violation(_ROLE[victim], facts)
