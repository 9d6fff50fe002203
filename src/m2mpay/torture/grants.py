"""The grant phase: a feed's seller (node, sessions, grant keeper, its own Mosquitto and
the plug; `m2mpay.bench.feed_seller`) is SIGKILLed during a grant, an extension or an
expiry, and started again on its stores and its broker's data dir.

A buyer process pays for seconds of the live topic and reads it with a real MQTT
client (a persistent session, connecting again when the restarted broker drops it).
After the restart, and again after the grant ended, the broker is audited against the
grants; once the session ended, its receipts, the grant and what the reader received
are the facts:

- no paid second lost: the session ends with every paid second delivered
  (`units == target`, paid in full, receipts both signed), the grant permitted exactly
  those seconds, and the reader held its subscription at least that long (from its
  SUBACK to `paid_until`, within the tolerance), less the time the seller was down:
  its broker dies with it (fail closed), and the paid time runs on meanwhile;
- none leaked: no message published after `paid_until` plus the tolerance reached
  the reader, across the crash;
- the broker in step: no client could read the live topic without a live grant, right
  after the restart or after the end;
- the channel moves exactly what the receipts say and settles at the newest proofs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from typing import Any, Final

from m2mpay.bench.feed_seller import write_feed_config
from m2mpay.torture.pair import OwnPair, Pair, payment_violation
from m2mpay.torture.phase import Facts
from m2mpay.torture.sessions import session_ends
from m2mpay.torture.world import TortureError, World, until

__all__ = [
    "MOMENTS",
    "PRICE",
    "TOLERANCE_MS",
    "GrantCrash",
    "grant_violation",
    "sleep_until",
]

PRICE: Final = 10**12  # a second of the live topic
TOLERANCE_MS: Final = 250  # a message published this long after the end may still arrive
MOMENTS: Final = ("grant", "extension", "expiry")
LISTEN_AFTER_S: Final = 1.0  # the reader listens on after the end, while the plug publishes


class GrantCrash(OwnPair):
    """Its own pair (a buyer and the feed's seller, dev accounts of their own: the
    shared pair's nodes would see these channels)."""

    name = "grant.seller"

    def __init__(self) -> None:
        super().__init__()
        self._sold: dict[str, Any] = {}

    async def setup(self, world: World) -> None:
        self._world = world
        feeds = world.files("grant") / "seller-feed"
        write_feed_config(
            feeds,
            device="torture-plug",
            asset=world.token.address,
            price_per_hour=3600 * PRICE,
            max_seconds=600,
            publish_hz=20,
        )
        keys = world.keys
        pair = await self._start_own(
            Pair.of(world, "grant", keys.feed_buyer, keys.feed_seller, sessions=True, feeds=feeds)
        )
        self._sold = await pair.payee.call({"cmd": "feed_offer"})

    def check(self, facts: Facts) -> str | None:
        return grant_violation(facts)

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        buyer, seller = pair.payer, pair.payee
        since = await self.world.ledger.block_number()
        channel = await pair.open()
        moment = rng.choice(MOMENTS)
        first = rng.randint(2, 4)
        target = first + (rng.randint(1, 3) if moment == "extension" else 0)
        buying = {"cmd": "grant_buy", **self._sold, "seconds": [first], "timeout": 90}
        acked = 0
        if moment == "grant":
            # Anywhere from the request to the subscription accepted (tens of ms).
            bought, restart = await asyncio.gather(
                buyer.call(buying, timeout=120), self._restart(rng.uniform(0.0, 0.08))
            )
            [grant] = bought["grants"]
        else:
            [grant] = (await buyer.call(buying, timeout=120))["grants"]
            paid_until = await self._paid_until(grant["session"])
            if moment == "extension":
                # Paid again a little before the end; the seller dies as the payment lands.
                await sleep_until(paid_until - rng.randint(300, 1_200))
                await buyer.call(
                    {"cmd": "grant_extend", "session": grant["session"], "seconds": target}
                )
                await asyncio.sleep(rng.uniform(0.0, 0.1))
            else:
                await sleep_until(paid_until + rng.randint(-400, 400))
            killed_at = time.monotonic()
            await seller.kill()
            # Every acknowledgement the buyer holds came from the seller before it died.
            acked = await pair.acked(channel)
            restart = await self._restart(0.0, killed_at=killed_at)
        audit, down_ms = restart
        facts: Facts = {"moment": MOMENTS.index(moment), "target": target, "acked": acked}
        facts["down_ms"] = down_ms
        facts["restored"] = await pair.total("payee", channel)
        facts["readable_after_restart"] = audit
        facts |= await session_ends(grant["session"], {"bought": buyer, "sold": seller})
        facts |= await self._after_the_end(grant["session"], int(grant["suback_ms"]))
        return facts | await pair.settled_facts(channel, since)

    async def _restart(self, delay: float, *, killed_at: float | None = None) -> tuple[int, int]:
        """SIGKILL the seller after `delay` (unless it was at `killed_at`), start it
        again; how many clients may read the live topic without a live grant once it
        is back, and how long it was down (ms)."""
        if killed_at is None:
            await asyncio.sleep(delay)
            killed_at = time.monotonic()
            await self.pair.payee.kill()
        await self.pair.payee.start()
        down_ms = round((time.monotonic() - killed_at) * 1000)
        return await self._readable_without_grant(), down_ms

    async def _readable_without_grant(self) -> int:
        audit = await self.pair.payee.call({"cmd": "feed_audit", "tolerance_ms": TOLERANCE_MS})
        return len(audit["readable_without_grant"])

    async def _grant(self, session: str) -> dict[str, Any]:
        grants = (await self.pair.payee.call({"cmd": "feed_grants"}))["grants"]
        for grant in grants:
            if grant["session"] == session:
                found: dict[str, Any] = grant
                return found
        raise TortureError(f"the seller has no grant for session {session}")

    async def _paid_until(self, session: str) -> int:
        return int((await self._grant(session))["paid_until_ms"])

    async def _after_the_end(self, session: str, suback_ms: int) -> Facts:
        """The grant once ended, what the reader got while the plug went on publishing
        a while after the end, and the broker's audit then."""

        async def grant() -> dict[str, Any]:
            return await self._grant(session)

        with contextlib.suppress(TortureError):
            await until(grant, lambda g: g["phase"] == "ended", what="the grant ended")
        ended = await grant()
        paid_until = int(ended["paid_until_ms"])
        await sleep_until(paid_until + int(LISTEN_AFTER_S * 1000))
        [reader] = (await self.pair.payer.call({"cmd": "grant_readers", "close": True}))["readers"]
        arrived = [int(at) for _, at in reader["received"]]
        return {
            "grant_ended": int(ended["phase"] == "ended"),
            "permitted_s": int(ended["permitted_s"]),
            "held_ms": paid_until - suback_ms,
            "received_messages": len(arrived),
            "leaked": sum(1 for at in arrived if at > paid_until + TOLERANCE_MS),
            "readable_after_end": await self._readable_without_grant(),
        }


async def sleep_until(epoch_ms: int) -> None:
    """Until a wall-clock moment: grants end on the wall clock, which all processes share."""
    delay = epoch_ms / 1000 - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def grant_violation(facts: Facts, moments: Sequence[str] = MOMENTS) -> str | None:
    """The grant invariants (see the module docstring), then the session's and the
    channel's; `facts["moment"]` names one of `moments`."""
    moment = moments[facts["moment"]]
    target = facts["target"]
    if facts["readable_after_restart"] or facts["readable_after_end"]:
        return (
            f"the broker let {facts['readable_after_restart']} client(s) read without a live "
            f"grant after the restart, {facts['readable_after_end']} after the end ({moment})"
        )
    if facts["leaked"]:
        return (
            f"{facts['leaked']} message(s) published after the paid end (plus "
            f"{TOLERANCE_MS} ms) reached the reader ({moment})"
        )
    if not facts["received_messages"]:
        return f"the paying reader received nothing ({moment})"
    for side in ("bought", "sold"):
        if not (facts[f"{side}_stopped"] and facts[f"{side}_countersigned"]):
            return f"the {side} side's session did not end with receipts both signed ({moment})"
    flows = {
        side: (facts[f"{side}_units"], facts[f"{side}_value"], facts[f"{side}_paid"])
        for side in ("bought", "sold")
    }
    if flows["bought"] != flows["sold"]:
        return f"the sides disagree on the session: {flows} ({moment})"
    if flows["sold"] != (target, target * PRICE, target * PRICE) or facts["permitted_s"] != target:
        return (
            f"paid seconds lost: {target} s bought, the session ended at {flows['sold']}, "
            f"the grant permitted {facts['permitted_s']} s ({moment})"
        )
    # Its broker dies with the seller (fail closed): the time the seller was down, paid
    # time running, is the one time the reader may not hold the topic.
    held = facts["held_ms"] + facts["down_ms"]
    if not facts["grant_ended"] or held < target * 1000 - TOLERANCE_MS:
        return (
            f"paid seconds lost: the reader held the live topic {facts['held_ms']} ms of "
            f"{target} s paid, the seller down {facts['down_ms']} ms ({moment})"
        )
    if facts["received"] != target * PRICE:
        return f"the channel moved {facts['received']}, the receipts say {target * PRICE}"
    return payment_violation("payee", facts)
