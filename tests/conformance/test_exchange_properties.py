"""Exchange properties over random sequences of swaps and liquidity changes (hypothesis,
embedded ledger): the product of reserves never falls in a swap and a share's part of
each reserve never falls at all; no provider takes out more than its share; the reserves
equal what the exchange holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2mpay.chain import NATIVE_TOKEN, EmbeddedLedger
from m2mpay.crypto import PrivateKey
from m2mpay.errors import TransactionReverted
from tests.conformance.exchange_kit import UNIT, Market, open_market

# Reverts a random step may meet; anything else fails the test.
EXPECTED_REFUSALS = ("output is zero", "deposit buys no shares", "not enough shares")


@dataclass(frozen=True)
class Swap:
    pool: int  # 0: LIGHT/M2M, 1: ETH/LIGHT
    trader: int
    forward: bool
    amount: int


@dataclass(frozen=True)
class Add:
    pool: int
    provider: int
    amount_a: int
    amount_b: int


@dataclass(frozen=True)
class Remove:
    pool: int
    provider: int
    permille: int  # of the provider's shares; above 1000 asks for more than it holds


_amounts = st.integers(min_value=1, max_value=30 * UNIT) | st.integers(1, 10**6)
_steps = st.one_of(
    st.builds(Swap, st.integers(0, 1), st.integers(0, 1), st.booleans(), _amounts),
    st.builds(Add, st.integers(0, 1), st.integers(0, 1), _amounts, _amounts),
    st.builds(Remove, st.integers(0, 1), st.integers(0, 1), st.integers(1, 1100)),
)


class _Run:
    def __init__(self, market: Market) -> None:
        self.m = market
        self.pairs = [
            (market.light.address, market.m2m.address),
            (NATIVE_TOKEN, market.light.address),
        ]
        self.traders = [market.bob, market.carol]
        self.providers = [market.alice, market.carol]

    async def start(self) -> None:
        m = self.m
        for who in (m.alice, m.bob, m.carol):
            for token in (m.light, m.m2m):
                await token.approve(who, m.exchange.address, 1_000 * UNIT)
        deadline = await m.deadline(10**6)
        await m.exchange.add(m.alice, *self.pairs[0], 100 * UNIT, 200 * UNIT, deadline)
        await m.exchange.add(m.alice, *self.pairs[1], 20 * UNIT, 100 * UNIT, deadline)

    async def state(self) -> list[tuple[int, int, int]]:
        return [await self.m.exchange.reserves(*pair) for pair in self.pairs]

    async def check_reserves_equal_balances(self) -> None:
        (light0, m2m, _), (eth, light1, _) = await self.state()
        ex = self.m.exchange.address
        assert await self.m.light.balance_of(ex) == light0 + light1
        assert await self.m.m2m.balance_of(ex) == m2m
        assert await self.m.ledger.balance(ex) == eth

    async def step(self, step: Swap | Add | Remove) -> None:
        m, before = self.m, await self.state()
        pair = self.pairs[step.pool]
        deadline = await m.deadline()
        refusal: str | None = None
        try:
            if isinstance(step, Swap):
                token_in, token_out = pair if step.forward else pair[::-1]
                await m.exchange.swap(
                    self.traders[step.trader], token_in, token_out, step.amount, 0, deadline
                )
            elif isinstance(step, Add):
                await m.exchange.add(
                    self.providers[step.provider], *pair, step.amount_a, step.amount_b, deadline
                )
            else:
                await self.remove(self.providers[step.provider], step.pool, step.permille)
        except TransactionReverted as refused:
            refusal = refused.reason
        if refusal is not None:
            assert refusal.removeprefix("Exchange: ") in EXPECTED_REFUSALS, refusal
            assert await self.state() == before
        after = await self.state()
        for (a0, a1, at), (b0, b1, bt) in zip(after, before, strict=True):
            if isinstance(step, Swap):
                assert at == bt
                assert a0 * a1 >= b0 * b1
            else:
                # Rounding favours the pool: a share's part of each reserve never falls.
                assert a0 * bt >= b0 * at
                assert a1 * bt >= b1 * at
        await self.check_reserves_equal_balances()

    async def remove(self, provider: PrivateKey, pool: int, permille: int) -> None:
        m, pair = self.m, self.pairs[pool]
        held = await m.exchange.shares_of(*pair, provider.address)
        burned = max(held * permille // 1000, 1)
        reserve_a, reserve_b, total = await m.exchange.reserves(*pair)
        token_b = m.light if pool == 1 else m.m2m
        b_before = await token_b.balance_of(provider.address)
        await m.exchange.remove(provider, *pair, burned, await m.deadline())
        taken_a = reserve_a - (await m.exchange.reserves(*pair))[0]
        taken_b = await token_b.balance_of(provider.address) - b_before
        # No more than the burned shares' part of each reserve, and that much left the pool.
        assert taken_a * total <= burned * reserve_a
        assert taken_b * total <= burned * reserve_b
        assert taken_b == reserve_b - (await m.exchange.reserves(*pair))[1]


async def _play(steps: list[Swap | Add | Remove]) -> None:
    async with EmbeddedLedger() as ledger:
        run = _Run(await open_market(ledger))
        await run.start()
        for step in steps:
            await run.step(step)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_steps, min_size=1, max_size=12))
def test_random_swaps_and_liquidity_keep_the_pool_whole(steps: list[Swap | Add | Remove]) -> None:
    asyncio.run(_play(steps))
