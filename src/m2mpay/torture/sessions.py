"""Phases of a metered session: SIGKILL the buyer or the seller while units and
payments flow; the session must still end with receipts both signed, no unit
delivered beyond the credit window, and the channel paying exactly the receipts."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any, Final

from m2mpay.errors import M2MPayError
from m2mpay.torture.pair import Pair, payment_violation
from m2mpay.torture.phase import Facts, Phase
from m2mpay.torture.world import TortureError, World, until

__all__ = ["SessionCrash", "session_violation"]

PRICE: Final = 10**12  # per unit (1 Wh)
WINDOW: Final = 20  # units the seller delivers ahead of payment
BATCH: Final = 5
RATE: Final = 60  # units per second from the seller's simulated meter
_ROLE: Final = {"buyer": "payer", "seller": "payee"}


class SessionCrash(Phase):
    """The buyer (the payer of the pair) buys a target of units from the seller."""

    def __init__(self, victim: str) -> None:
        self.victim = victim
        self.name = f"session.{victim}"
        self._world: World | None = None
        self._pair: Pair | None = None
        self._offer: dict[str, Any] = {}

    @property
    def pair(self) -> Pair:
        assert self._pair is not None, "the phase is not set up"
        return self._pair

    async def setup(self, world: World) -> None:
        self._world = world
        self._pair = await Pair.shared(world)
        offered = await self._pair.payee.call(
            {
                "cmd": "session_offer",
                "asset": str(world.token.address),
                "price": str(PRICE),
                "window": WINDOW,
                "batch": BATCH,
                "rate": RATE,
            }
        )
        self._offer = offered["offer"]

    async def teardown(self) -> None:
        self._pair = None  # the pair is the world's, for the next phase

    def check(self, facts: Facts) -> str | None:
        return session_violation(self.victim, facts)

    async def _session(self, role: str, session: str) -> dict[str, Any]:
        return await self.pair.process(role).call({"cmd": "session_info", "session": session})

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        assert self._world is not None
        since = await self._world.ledger.block_number()
        channel = await pair.open()
        target = rng.randint(4 * BATCH, 30 * BATCH)
        started = await pair.payer.call(
            {"cmd": "session_start", "offer": self._offer, "target_units": target}
        )
        session = started["session"]
        # Anywhere from the first reports to the last receipts.
        await asyncio.sleep(rng.uniform(0.0, 1.2 * target / RATE))
        role = _ROLE[self.victim]
        if role == "payer":
            acked = int((await pair.info("payer", channel))["acked_total"])
            await pair.restart("payer")
        else:
            await pair.payee.kill()
            acked = int((await pair.info("payer", channel))["acked_total"])
            await pair.payee.start()
            # Offers are the application's: a restarted seller publishes its offer again.
            await pair.payee.call({"cmd": "session_offer", "offer": self._offer, "rate": RATE})
        restored = await pair.info(role, channel)
        facts: Facts = {
            "target": target,
            "acked": acked,
            "restored": int(restored["sent_total" if role == "payer" else "received_total"]),
        }
        facts |= await self._ended(session)
        payer, payee = await pair.agreed(channel)
        facts |= {
            "sent": int(payer["sent_total"]),
            "acked_total": int(payer["acked_total"]),
            "received": int(payee["received_total"]),
        }
        return facts | await pair.close_and_settle(channel, since)

    async def _ended(self, session: str) -> Facts:
        """Both sides' final view of the session, and the largest exposure each saw."""
        views: dict[str, dict[str, Any]] = {}
        for role in ("payer", "payee"):
            with contextlib.suppress(TortureError):
                await until(
                    lambda r=role: self._session(r, session),  # type: ignore[misc]
                    lambda view: view["phase"] == "stopped",
                    what=f"the {role}'s session stopped",
                )
            views[role] = await self._session(role, session)
        facts: Facts = {}
        for role, name in (("payer", "bought"), ("payee", "sold")):
            view = views[role]
            for key in ("units", "value", "paid"):
                facts[f"{name}_{key}"] = int(view["forward"][key])
            facts[f"{name}_stopped"] = int(view["phase"] == "stopped")
            facts[f"{name}_countersigned"] = int(bool(view["countersigned"]))
            try:
                stats = await self.pair.process(role).call({"cmd": "session_stats"})
            except M2MPayError as exc:
                raise TortureError(f"session_stats of the {role}: {exc}") from exc
            facts[f"{name}_exposure"] = int(stats["max_exposure_units"])
        return facts


def session_violation(victim: str, facts: Facts) -> str | None:
    """The session invariants, then the payment invariants of its channel."""
    for name in ("bought", "sold"):
        if facts[f"{name}_exposure"] > WINDOW:
            return (
                f"units delivered beyond the credit window: the {name[:-1] or name} side saw "
                f"{facts[f'{name}_exposure']} units unpaid, the window is {WINDOW}"
            )
        if not (facts[f"{name}_stopped"] and facts[f"{name}_countersigned"]):
            return f"the {name} side's session did not end with receipts both signed"
    bought = tuple(facts[f"bought_{key}"] for key in ("units", "value", "paid"))
    sold = tuple(facts[f"sold_{key}"] for key in ("units", "value", "paid"))
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
