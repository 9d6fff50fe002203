"""The channel paywall phase: a seller's node process serves an HTTP 402 paywall paid in
`batch-settlement` on a channel with the buyer's node process; it is SIGKILLed at a
random moment of a run of paid requests (each carrying the buyer node's next running
total), then started again.

The seller may have served only what it made durable, and hold only what the buyer
signed: every commitment total a served request carried is at most the total the
restarted seller holds, the requests served cost no more than that total, and that
total is no more than the buyer signed. The buyer's node is stopped while the seller
restarts, so the seller's total is what its own log kept, not a resync's catch-up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
from typing import Any, Final

import httpx

from m2mpay.bench.paywall_peer import PAYWALL_BODY, PAYWALL_PRICE
from m2mpay.chain.devkeys import dev_keys
from m2mpay.torture.pair import DEPOSIT, OwnPair, Pair
from m2mpay.torture.phase import Facts
from m2mpay.torture.world import UNIT, World

__all__ = ["BUYER_KEY", "SELLER_KEY", "PaywallCrash", "paywall_violation"]

# Beyond the market actor's keys (14–19): no other phase's node sees these channels.
BUYER_KEY: Final = 20
SELLER_KEY: Final = 21
_GAS_COIN: Final = 10 * UNIT
_REQUESTS: Final = (5, 40)
_KILL_AFTER_S: Final = (0.0, 0.4)


class PaywallCrash(OwnPair):
    name = "paywall.channel"

    async def setup(self, world: World) -> None:
        self._world = world
        owner, keys = world.key(0), dev_keys(SELLER_KEY + 1)
        for index in (BUYER_KEY, SELLER_KEY):
            await world.ledger.transact(
                owner, keys[index].address, b"", gas=21_000, value=_GAS_COIN
            )
        await world.token.mint(owner, keys[BUYER_KEY].address, 1000 * DEPOSIT)
        await self._start_own(
            Pair.of(world, "paywall", BUYER_KEY, SELLER_KEY, paywall=world.token.address)
        )

    def check(self, facts: Facts) -> str | None:
        return paywall_violation(facts)

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        channel = await pair.open()
        served: list[int] = []
        buying = asyncio.ensure_future(self._buy(channel, rng.randint(*_REQUESTS), served))
        await asyncio.sleep(rng.uniform(*_KILL_AFTER_S))
        await pair.payee.kill()
        with contextlib.suppress(Exception):  # its seller is gone mid-request
            await buying
        # The buyer stays away while the seller restarts: what it holds is its own log's.
        await pair.payer.stop()
        await pair.payee.start()
        held = await pair.total("payee", channel)
        await pair.payer.start()
        signed = await pair.total("payer", channel)
        return {
            "served": len(served),
            "served_max_total": max(served, default=0),
            "held": held,
            "signed": signed,
            "price": PAYWALL_PRICE,
        }

    async def _buy(self, channel: str, count: int, served: list[int]) -> None:
        """Pay for `count` requests in turn, noting each served request's total."""
        pair = self.pair
        async with httpx.AsyncClient(base_url=pair.payee.paywall_url, timeout=30) as http:
            unpaid = await http.get("/reading")
            required = json.loads(base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"]))
            accepted: dict[str, Any] = required["accepts"][0]
            for _ in range(count):
                payload = await pair.payer.call(
                    {"cmd": "commit", "channel": channel, "amount": str(PAYWALL_PRICE)}
                )
                header = {"x402Version": 2, "accepted": accepted, "payload": payload}
                answer = await http.get(
                    "/reading",
                    headers={
                        "PAYMENT-SIGNATURE": base64.b64encode(json.dumps(header).encode()).decode()
                    },
                )
                if answer.status_code == 200 and answer.content == PAYWALL_BODY:
                    settled = json.loads(base64.b64decode(answer.headers["PAYMENT-RESPONSE"]))
                    served.append(int(settled["transaction"].rsplit(":", 1)[1]))


def paywall_violation(facts: Facts) -> str | None:
    """The first invariant the paywall's facts violate, in words."""
    if facts["served_max_total"] > facts["held"]:
        return (
            f"a request was served on total {facts['served_max_total']}, "
            f"the restarted seller holds {facts['held']}: served before it was durable"
        )
    if facts["served"] * facts["price"] > facts["held"]:
        return f"{facts['served']} requests served, the seller holds only {facts['held']}"
    if facts["held"] > facts["signed"]:
        return f"the seller holds {facts['held']}, the buyer signed {facts['signed']}"
    return None
