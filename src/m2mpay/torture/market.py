"""The market phase: an actor (`bench.market_actor`) running a scripted mix of market
operations on the world's exchange, registry, hub and escrow is SIGKILLed at random
moments — while it swaps, adds or removes liquidity, lists, rates, opens or ends an
escrow — and started again until its script is done.

Then nothing may be half done or done twice: every nonce the actor's keys used went to
a transaction its journal logged, none reverted, no operation was mined twice; the
exchange's reserves equal its balances and the product of its reserves (per share
squared, across liquidity changes) never fell; no provider took more than its shares;
a session is rated at most once per party; the listing is what the journal last asked
for; every escrow ended as its script said (claimed: the seller got reading x price and
the buyer the rest; or refunded), never both, and the escrow holds exactly the deposits
still open; the token's supply and the tokens among the parties are conserved.
"""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any, Final

import orjson

from m2mpay.bench.market_actor import market_keys, market_plan
from m2mpay.bench.processes import ChildProcess
from m2mpay.torture.market_facts import MarketSnapshot, market_facts, snapshot
from m2mpay.torture.phase import Facts, Phase
from m2mpay.torture.world import UNIT, TortureError, World

__all__ = ["MarketCrash", "market_violation"]

# Each funded once a set-up: far more than the trials of a run spend.
_GAS_COIN: Final = 10 * UNIT
_TOKENS: Final = 10**5 * UNIT
_FINISH_S: Final = 120.0


class ActorProcess(ChildProcess):
    """One run of the actor: its `{"step": N}` lines, until `{"done": N}` or a kill."""

    def __init__(self, world: World, journal: str, seed: int) -> None:
        market = world.market
        assert market is not None
        ordered = (
            world.token.address, world.hub.address, market.exchange, market.registry,
            market.escrow,
        )  # fmt: skip
        argv = [
            sys.executable, "-m", "m2mpay.bench.market_actor",
            "--chain-dir", str(world.chain_dir), "--journal", journal, "--seed", str(seed),
            "--addresses", ",".join(a.checksum for a in ordered),
        ]  # fmt: skip
        super().__init__(argv, kept_lines=40)

    async def start(self) -> None:
        await self._spawn(stdin=asyncio.subprocess.DEVNULL)

    async def next_line(self, timeout: float) -> dict[str, Any] | None:
        """The next line it says; None once it has exited."""
        line = await self._line(timeout)
        if not line:
            return None
        said: dict[str, Any] = orjson.loads(line)
        return said


class MarketCrash(Phase):
    name = "market.actor"

    def __init__(self) -> None:
        super().__init__()
        self._trials = 0

    async def setup(self, world: World) -> None:
        if world.market is None:
            raise TortureError("the world's deployment has no market contracts")
        self._world = world
        owner = world.key(0)
        for role, key in market_keys().items():
            if role == "meter":
                continue  # it signs readings, never a transaction
            await world.ledger.transact(owner, key.address, b"", gas=21_000, value=_GAS_COIN)
            if role in ("provider", "trader", "buyer"):
                await world.token.mint(owner, key.address, _TOKENS)

    async def teardown(self) -> None:
        self._world = None

    def check(self, facts: Facts) -> str | None:
        return market_violation(facts)

    async def trial(self, rng: random.Random) -> Facts:
        world = self.world
        self._trials += 1
        seed = rng.getrandbits(32)
        journal = str(world.files("market") / f"journal-{self._trials}.sqlite3")
        before: MarketSnapshot = await snapshot(world)
        steps = len(market_plan(seed))
        kills = 0
        for _ in range(rng.randint(1, 3)):
            kills += await self._run_until_killed(journal, seed, rng.randrange(steps), rng)
        await self._run_to_the_end(journal, seed)
        facts = await market_facts(world, before, journal)
        return facts | {"kills": kills, "planned": steps}

    async def _run_until_killed(
        self, journal: str, seed: int, at_step: int, rng: random.Random
    ) -> int:
        """Start the actor, SIGKILL it once it has begun step `at_step` (plus a moment);
        1 if it was killed, 0 if it finished first."""
        actor = ActorProcess(self.world, journal, seed)
        await actor.start()
        while (said := await actor.next_line(_FINISH_S)) is not None:
            if "done" in said:
                await actor.next_line(_FINISH_S)  # reaped
                return 0
            if said.get("step", -1) >= at_step:
                await asyncio.sleep(rng.uniform(0.0, 0.15))
                await actor.kill()
                return 1
        return 0

    async def _run_to_the_end(self, journal: str, seed: int) -> None:
        actor = ActorProcess(self.world, journal, seed)
        await actor.start()
        while (said := await actor.next_line(_FINISH_S)) is not None:
            if "done" in said:
                return
        raise TortureError(f"the market actor died before its end: {actor.stderr_tail()}")


def market_violation(facts: Facts) -> str | None:
    """The first invariant the market's facts violate, in words."""
    if facts["ops_done"] != facts["planned"]:
        return f"the actor's journal finished {facts['ops_done']} of {facts['planned']} operations"
    if facts["nonces_used"] != facts["txs_mined"]:
        return (
            f"the actor's keys used {facts['nonces_used']} nonces, "
            f"its journal logged {facts['txs_mined']} mined transactions"
        )
    if facts["ops_twice"]:
        return f"{facts['ops_twice']} operation(s) mined more than one transaction"
    if facts["txs_reverted"]:
        return f"{facts['txs_reverted']} of the actor's transactions reverted (sent twice?)"
    for fact, says in _MARKET_CHECKS:
        if facts[fact]:
            return f"{says} ({fact} = {facts[fact]})"
    return None


_MARKET_CHECKS: Final = (
    ("reserve_gap", "the exchange's reserves differ from its balances"),
    ("k_fell", "the product of the reserves fell"),
    ("over_shares", "a provider took more than its shares"),
    ("shares_gap", "the provider's shares differ from what it added less what it removed"),
    ("double_ratings", "a session was rated more than once by a party"),
    ("ratings_missing", "a rating the journal finished is not on chain"),
    ("listing_wrong", "the listing is not what the journal last asked for"),
    ("escrow_wrong", "an escrow did not end as its script said, or split wrongly"),
    ("escrow_both", "an escrow was both claimed and refunded"),
    ("escrow_held_gap", "the escrow holds other than the deposits still open"),
    ("supply_moved", "the token's supply changed"),
    ("tokens_moved", "tokens left or joined the parties and contracts"),
)
