"""Exchange: constant-product pools, token/ETH and token/token, and the attacks on them."""

from __future__ import annotations

import pytest

from m2mpay.chain import NATIVE_TOKEN, Ledger
from m2mpay.chain.artifacts import load_artifact
from m2mpay.errors import TransactionReverted
from tests.conformance.exchange_kit import UNIT, HostileToken, Market, open_market

MINIMUM_SHARES = 1000


@pytest.fixture
async def market(ledger: Ledger) -> Market:
    return await open_market(ledger)


def _out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


async def test_token_pool_adds_swaps_at_the_quote_and_removes(market: Market) -> None:
    ex, light, m2m = market.exchange, market.light, market.m2m
    await ex.add(
        market.alice, light.address, m2m.address, 100 * UNIT, 400 * UNIT, await market.deadline()
    )
    assert await ex.reserves(light.address, m2m.address) == (100 * UNIT, 400 * UNIT, 200 * UNIT)
    assert (
        await ex.shares_of(light.address, m2m.address, market.alice.address)
        == 200 * UNIT - MINIMUM_SHARES
    )
    [pool] = await ex.pools()
    assert {pool.token0, pool.token1} == {light.address, m2m.address}
    quote = await ex.quote(m2m.address, light.address, 10 * UNIT)
    assert quote == _out(10 * UNIT, 400 * UNIT, 100 * UNIT)  # the 0.3 % fee taken
    await ex.swap(
        market.bob,
        m2m.address,
        light.address,
        10 * UNIT,
        quote,
        await market.deadline(),
        permit=True,
    )
    assert await light.balance_of(market.bob.address) == 1_000 * UNIT + quote
    assert await ex.reserves(light.address, m2m.address) == (
        100 * UNIT - quote,
        410 * UNIT,
        200 * UNIT,
    )
    # The fee stays in the pool: the provider's shares are now worth more than it put in.
    shares = await ex.shares_of(light.address, m2m.address, market.alice.address)
    await ex.remove(market.alice, light.address, m2m.address, shares, await market.deadline())
    light_left, m2m_left, total = await ex.reserves(light.address, m2m.address)
    assert total == MINIMUM_SHARES
    assert await light.balance_of(ex.address) == light_left
    assert await m2m.balance_of(ex.address) == m2m_left
    assert (100 * UNIT - quote) * 410 * UNIT > 100 * UNIT * 400 * UNIT  # k grew by the fee


async def test_eth_pool_swaps_both_ways_and_refunds_unused_eth(market: Market) -> None:
    ex, light = market.exchange, market.light
    await ex.add(
        market.alice, NATIVE_TOKEN, light.address, UNIT, 50 * UNIT, await market.deadline()
    )
    # A second provider offers 2 ETH with 50 LIGHT: the price takes 1 ETH, the rest comes back.
    before = await market.ledger.balance(ex.address)
    await ex.add(
        market.carol, light.address, NATIVE_TOKEN, 50 * UNIT, 2 * UNIT, await market.deadline()
    )
    assert await market.ledger.balance(ex.address) - before == UNIT
    assert (await ex.reserves(NATIVE_TOKEN, light.address))[:2] == (2 * UNIT, 100 * UNIT)
    quote = await ex.quote(NATIVE_TOKEN, light.address, UNIT // 10)
    await ex.swap(
        market.bob, NATIVE_TOKEN, light.address, UNIT // 10, quote, await market.deadline()
    )
    back = await ex.quote(light.address, NATIVE_TOKEN, quote)
    assert back < UNIT // 10  # a round trip pays the fee twice
    await ex.swap(market.bob, light.address, NATIVE_TOKEN, quote, back, await market.deadline())
    eth_reserve, light_reserve, _ = await ex.reserves(NATIVE_TOKEN, light.address)
    assert await market.ledger.balance(ex.address) == eth_reserve
    assert await light.balance_of(ex.address) == light_reserve


async def test_bad_requests_revert_with_reasons_and_move_nothing(market: Market) -> None:
    ex, light, m2m, bob = market.exchange, market.light, market.m2m, market.bob
    late = await market.deadline()
    await ex.add(market.alice, light.address, m2m.address, 100 * UNIT, 100 * UNIT, late)
    state = await ex.reserves(light.address, m2m.address)
    past = await market.ledger.block_timestamp() - 1
    quote = await ex.quote(light.address, m2m.address, UNIT)
    refusals = [
        ("deadline passed", ex.swap(bob, light.address, m2m.address, UNIT, 0, past)),
        ("output below minimum", ex.swap(bob, light.address, m2m.address, UNIT, quote + 1, late)),
        ("zero amount", ex.swap(bob, light.address, m2m.address, 0, 0, late)),
        ("amount too large", ex.swap(bob, light.address, m2m.address, 2**112, 0, late)),
        ("identical tokens", ex.swap(bob, light.address, light.address, UNIT, 0, late)),
        ("no such pool", ex.swap(bob, light.address, NATIVE_TOKEN, UNIT, 0, late, permit=True)),
        ("output is zero", ex.swap(bob, light.address, m2m.address, 1, 0, late)),
        ("not enough shares", ex.remove(bob, light.address, m2m.address, 1, late)),
        ("deadline passed", ex.remove(market.alice, light.address, m2m.address, 1, past)),
        ("deadline passed", ex.add(bob, light.address, m2m.address, UNIT, UNIT, past)),
        ("identical tokens", ex.add(bob, m2m.address, m2m.address, UNIT, UNIT, late)),
        (
            "shares below minimum",
            ex.add(bob, light.address, m2m.address, UNIT, UNIT, late, min_shares=2 * UNIT),
        ),
        ("amount too large", ex.add(bob, light.address, m2m.address, 2**112, 2**112, late)),
    ]
    for reason, attempt in refusals:
        with pytest.raises(TransactionReverted, match=reason):
            await attempt
    assert await ex.reserves(light.address, m2m.address) == state
    assert await light.balance_of(bob.address) == 1_000 * UNIT
    assert await m2m.balance_of(bob.address) == 1_000 * UNIT
    with pytest.raises(TransactionReverted, match="identical tokens"):
        await ex.quote(m2m.address, m2m.address, 1)


async def test_a_donation_moves_no_price_and_the_first_depositor_cannot_inflate_shares(
    market: Market,
) -> None:
    ex, light, m2m = market.exchange, market.light, market.m2m
    attacker, victim = market.carol, market.bob
    # The classic attack: the smallest first deposit, then a large donation straight to the
    # pool so the victim's deposit rounds to nothing and the attacker takes it.
    with pytest.raises(TransactionReverted, match="initial liquidity too small"):
        await ex.add(attacker, light.address, m2m.address, 1000, 1000, await market.deadline())
    await ex.add(attacker, light.address, m2m.address, 1001, 1001, await market.deadline())
    price = await ex.quote(light.address, m2m.address, 1000)
    await light.transfer(attacker, ex.address, 500 * UNIT)
    await m2m.transfer(attacker, ex.address, 500 * UNIT)
    assert await ex.quote(light.address, m2m.address, 1000) == price
    assert await ex.reserves(light.address, m2m.address) == (1001, 1001, 1001)
    await ex.add(victim, light.address, m2m.address, 10 * UNIT, 10 * UNIT, await market.deadline())
    shares = await ex.shares_of(light.address, m2m.address, victim.address)
    await ex.remove(victim, light.address, m2m.address, shares, await market.deadline())
    # The victim gets its deposit back less at most a wei of rounding on each side.
    assert await light.balance_of(victim.address) >= 1_000 * UNIT - 1
    assert await m2m.balance_of(victim.address) >= 1_000 * UNIT - 1
    attacker_shares = await ex.shares_of(light.address, m2m.address, attacker.address)
    assert attacker_shares == 1
    await ex.remove(attacker, light.address, m2m.address, attacker_shares, await market.deadline())
    assert await light.balance_of(attacker.address) < 1_000 * UNIT  # its donation is lost


async def test_rounding_favours_the_pool(market: Market) -> None:
    ex, light, m2m = market.exchange, market.light, market.m2m
    await ex.add(
        market.alice,
        light.address,
        m2m.address,
        3 * UNIT + 7,
        5 * UNIT + 3,
        await market.deadline(),
    )
    before = await ex.reserves(light.address, m2m.address)
    # A deposit pays for its shares rounded up, and the shares come back rounded down.
    await ex.add(
        market.bob, light.address, m2m.address, 10**6 + 1, 10**6 + 3, await market.deadline()
    )
    shares = await ex.shares_of(light.address, m2m.address, market.bob.address)
    await ex.remove(market.bob, light.address, m2m.address, shares, await market.deadline())
    assert await light.balance_of(market.bob.address) <= 1_000 * UNIT
    assert await m2m.balance_of(market.bob.address) <= 1_000 * UNIT
    after = await ex.reserves(light.address, m2m.address)
    assert after[0] * after[1] >= before[0] * before[1]


async def test_a_fee_on_transfer_token_is_refused(market: Market) -> None:
    ex, m2m = market.exchange, market.m2m
    taxed = await HostileToken.deploy(market.ledger, market.owner)
    for who in (market.alice, market.bob):
        await taxed.call(market.owner, "mint", who.address, 100 * UNIT)
    await taxed.call(market.alice, "approve", ex.address, 100 * UNIT)
    await taxed.call(market.owner, "set_fee_bps", 100)
    with pytest.raises(TransactionReverted, match="takes a fee on transfer"):
        await ex.add(
            market.alice, taxed.address, m2m.address, 10 * UNIT, 10 * UNIT, await market.deadline()
        )
    # A token that turns its fee on after its pool exists is refused at the swap.
    await taxed.call(market.owner, "set_fee_bps", 0)
    await ex.add(
        market.alice, taxed.address, m2m.address, 10 * UNIT, 10 * UNIT, await market.deadline()
    )
    await taxed.call(market.owner, "set_fee_bps", 100)
    with pytest.raises(TransactionReverted, match="takes a fee on transfer"):
        await ex.swap(market.bob, taxed.address, m2m.address, UNIT, 0, await market.deadline())
    assert await ex.reserves(taxed.address, m2m.address) == (10 * UNIT, 10 * UNIT, 10 * UNIT)
    # The binding approved the token, which has no permit, before the swap it refused.
    assert await taxed.view("allowance", market.bob.address, ex.address) == UNIT
    assert await taxed.view("balanceOf", ex.address) == 10 * UNIT


async def test_a_token_reentering_the_exchange_is_locked_out(market: Market) -> None:
    ex, m2m = market.exchange, market.m2m
    hostile = await HostileToken.deploy(market.ledger, market.owner)
    for who in (market.alice, market.bob):
        await hostile.call(market.owner, "mint", who.address, 100 * UNIT)
        await hostile.call(who, "approve", ex.address, 100 * UNIT)
    await ex.add(
        market.alice, hostile.address, m2m.address, 10 * UNIT, 10 * UNIT, await market.deadline()
    )
    # From inside transferFrom the token swaps again against the pool's reserves: a
    # swap that goes through when the token makes it on its own.
    deadline = await market.deadline()
    await m2m.transfer(market.bob, hostile.address, 2 * UNIT)
    erc20 = load_artifact("Token").interface
    await hostile.call(
        market.owner, "forward", m2m.address, erc20.encode_call("approve", ex.address, 2 * UNIT)
    )
    reentry = load_artifact("Exchange").interface.encode_call(
        "swap", m2m.address, hostile.address, UNIT, 0, hostile.address, deadline
    )
    await hostile.call(market.owner, "forward", ex.address, reentry)
    state = await ex.reserves(hostile.address, m2m.address)
    await hostile.call(market.owner, "set_reentry", ex.address, reentry)
    quote = await ex.quote(hostile.address, m2m.address, UNIT)
    await ex.swap(market.bob, hostile.address, m2m.address, UNIT, quote, deadline)
    assert await hostile.view("reentry_attempted")
    assert not await hostile.view("reentry_succeeded")
    assert await ex.reserves(hostile.address, m2m.address) == (
        state[0] + UNIT,
        state[1] - quote,
        state[2],
    )
    assert await m2m.balance_of(hostile.address) == UNIT  # the second swap never happened


async def test_eth_and_addresses_that_do_not_fit_are_refused(market: Market) -> None:
    ex, light, bob = market.exchange, market.light, market.bob
    late = await market.deadline()
    await ex.add(market.alice, NATIVE_TOKEN, light.address, UNIT, 10 * UNIT, late)
    abi = load_artifact("Exchange").interface
    state = await ex.reserves(NATIVE_TOKEN, light.address)
    refusals = [
        (
            "ETH sent differs from amount",
            "swap",
            (NATIVE_TOKEN, light.address, UNIT, 0, bob.address, late),
            UNIT - 1,
        ),
        (
            "ETH sent with a token",
            "swap",
            (light.address, NATIVE_TOKEN, UNIT, 0, bob.address, late),
            1,
        ),
        (
            "receiver is the zero address",
            "swap",
            (light.address, NATIVE_TOKEN, UNIT, 0, NATIVE_TOKEN, late),
            0,
        ),
        (
            "ETH sent differs from amount",
            "add_liquidity",
            (NATIVE_TOKEN, light.address, UNIT, UNIT, 0, late),
            0,
        ),
        (
            "token is not a contract",
            "add_liquidity",
            (light.address, bob.address, UNIT, UNIT, 0, late),
            0,
        ),
    ]
    for reason, name, args, value in refusals:
        with pytest.raises(TransactionReverted, match=reason):
            await market.ledger.transact(
                bob, ex.address, abi.encode_call(name, *args), gas=300_000, value=value
            )
    assert await ex.reserves(NATIVE_TOKEN, light.address) == state
    assert await market.ledger.balance(ex.address) == state[0]
