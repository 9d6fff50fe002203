"""ServiceRegistry reputation: a rating needs the session's receipt signed by both parties
of a channel the hub knows, in the hub's domain on this chain; one rating per party per
session; scores weighted by the value paid."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from m2mpay.chain import NATIVE_TOKEN, Closing, OnchainChannel
from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.registry import Score
from m2mpay.crypto import channel_domain
from m2mpay.errors import TransactionReverted
from tests.conformance.registry_kit import Market, market_of
from tests.conftest import World


@pytest.fixture
async def market(world: World) -> Market:
    return await market_of(world)


async def test_the_contract_computes_the_digest_the_nodes_sign(market: Market) -> None:
    session = market.session(paid_forward=7, paid_backward=2)
    domain = channel_domain(market.world.ledger.chain_id, market.world.hub.address)
    assert await market.registry.receipt_digest(session) == session.digest(domain)
    assert await market.registry.hub() == market.world.hub.address


async def test_each_party_rates_the_other_once_per_session(market: Market) -> None:
    world, registry = market.world, market.registry
    session = market.session(paid_forward=300)
    signatures = market.both(session)
    await registry.rate(world.alice, session, market.channel, *signatures, 5)
    await registry.rate(world.bob, session, market.channel, *signatures, 4)
    assert await registry.score(world.bob.address, market.token) == Score(1_500, 300, 1)
    assert await registry.score(world.alice.address, market.token) == Score(1_200, 300, 1)
    assert await registry.has_rated(market.channel.id, session.session_id, world.alice.address)

    with pytest.raises(TransactionReverted, match="party already rated this session"):
        await registry.rate(world.alice, session, market.channel, *signatures, 1)
    # The same session with other totals is still the same session.
    inflated = replace(session, forward=(3, 10**6, 10**6))
    with pytest.raises(TransactionReverted, match="party already rated this session"):
        await registry.rate(world.alice, inflated, market.channel, *market.both(inflated), 1)
    assert await registry.score(world.bob.address, market.token) == Score(1_500, 300, 1)

    events = [e for e in await registry.events() if e.name == "Rated"]
    assert [(e.args["rater"], e.args["rated"], e.args["rating"]) for e in events] == [
        (world.alice.address, world.bob.address, 5),
        (world.bob.address, world.alice.address, 4),
    ]
    assert events[0].args["session_id"] == session.session_id
    assert (events[0].args["channel_id"], events[0].args["value"]) == (market.channel.id, 300)


async def test_the_score_is_weighted_by_the_value_paid(market: Market) -> None:
    world, registry = market.world, market.registry
    for paid, rating in ((100, 5), (900, 1)):
        session = market.session(paid_forward=paid - 40, paid_backward=40)
        await registry.rate(world.alice, session, market.channel, *market.both(session), rating)
    score = await registry.score(world.bob.address, market.token)
    assert score == Score(5 * 100 + 1 * 900, 1_000, 2)
    assert score.average == Fraction(7, 5)  # not 3, the unweighted mean
    empty = market.session(paid_forward=0)
    with pytest.raises(TransactionReverted, match="nothing was paid in the session"):
        await registry.rate(world.alice, empty, market.channel, *market.both(empty), 5)
    assert await registry.score(world.carol.address, market.token) == Score(0, 0, 0)
    assert Score(0, 0, 0).average is None


async def test_forged_or_missing_signatures_are_refused(market: Market) -> None:
    world, registry = market.world, market.registry
    session = market.session()
    by_alice, by_bob = market.both(session)
    by_carol = market.sign(world.carol, session)
    with pytest.raises(TransactionReverted, match="receipt not signed by party b"):
        await registry.rate(world.alice, session, market.channel, by_alice, by_carol, 5)
    with pytest.raises(TransactionReverted, match="receipt not signed by party a"):
        await registry.rate(world.bob, session, market.channel, by_bob, by_alice, 5)
    # Signed, then the value changed: the digest no longer matches.
    richer = replace(session, forward=(3, 301, 301))
    with pytest.raises(TransactionReverted, match="receipt not signed by party a"):
        await registry.rate(world.alice, richer, market.channel, by_alice, by_bob, 5)

    missing = (bytes(32), bytes(32), 27)
    data = load_artifact("ServiceRegistry").interface.encode_call(
        "rate",
        session.as_abi(),
        market.channel.as_abi(),
        (0, 0, 0),
        (by_alice.r, by_alice.s, by_alice.v),
        missing,
        5,
    )
    with pytest.raises(TransactionReverted, match="invalid signature"):
        await world.ledger.transact(world.alice, registry.address, data, gas=240_000)
    assert await registry.score(world.bob.address, market.token) == Score(0, 0, 0)


async def test_receipts_of_another_chain_or_hub_are_refused(market: Market) -> None:
    world, registry = market.world, market.registry
    session = market.session()
    chain_id = world.ledger.chain_id + 1
    elsewhere = (
        market.sign(world.alice, session, chain_id=chain_id),
        market.sign(world.bob, session, chain_id=chain_id),
    )
    with pytest.raises(TransactionReverted, match="receipt not signed by party a"):
        await registry.rate(world.alice, session, market.channel, *elsewhere, 5)
    other_hub = world.token.address
    for_another = (
        market.sign(world.alice, session, hub=other_hub),
        market.sign(world.bob, session, hub=other_hub),
    )
    with pytest.raises(TransactionReverted, match="receipt not signed by party a"):
        await registry.rate(world.alice, session, market.channel, *for_another, 5)
    assert await registry.score(world.bob.address, market.token) == Score(0, 0, 0)


async def test_the_channel_must_be_the_receipts_and_known_to_the_hub(market: Market) -> None:
    world, registry = market.world, market.registry
    # Two keys of one owner sign a receipt over a channel they never opened.
    never_opened = OnchainChannel(
        world.alice.address, world.carol.address, world.token.address, 100, 999_999
    )
    session = replace(market.session(), channel_id=never_opened.id)
    signatures = (market.sign(world.alice, session), market.sign(world.carol, session))
    with pytest.raises(TransactionReverted, match="channel unknown to the hub"):
        await registry.rate(world.alice, session, never_opened, *signatures, 5)

    session = market.session()
    with pytest.raises(TransactionReverted, match="receipt names another channel"):
        await registry.rate(world.alice, session, never_opened, *market.both(session), 5)
    with pytest.raises(TransactionReverted, match="rater is not a party of the channel"):
        await registry.rate(world.carol, session, market.channel, *market.both(session), 5)


@pytest.mark.parametrize("rating", [0, 6])
async def test_a_rating_is_one_to_five(market: Market, rating: int) -> None:
    session = market.session()
    with pytest.raises(TransactionReverted, match="rating out of range"):
        await market.registry.rate(
            market.world.alice, session, market.channel, *market.both(session), rating
        )


async def test_totals_that_would_overflow_are_refused_with_a_reason(market: Market) -> None:
    world, registry = market.world, market.registry
    session = market.session(paid_forward=2**256 - 1, paid_backward=1)
    with pytest.raises(TransactionReverted, match="paid total overflows"):
        await registry.rate(world.alice, session, market.channel, *market.both(session), 5)
    assert await registry.score(world.bob.address, market.token) == Score(0, 0, 0)


async def test_ratings_over_a_channel_weigh_no_more_than_its_deposits(market: Market) -> None:
    world, registry = market.world, market.registry
    deposits = market.channel.total_deposit
    # Two keys of one owner could sign any total: what counts is what the hub holds.
    claimed = market.session(paid_forward=deposits - 100)
    await registry.rate(world.alice, claimed, market.channel, *market.both(claimed), 5)
    beyond = market.session(paid_forward=10**30)
    await registry.rate(world.alice, beyond, market.channel, *market.both(beyond), 1)
    assert await registry.score(world.bob.address, market.token) == Score(
        5 * (deposits - 100) + 100, deposits, 2
    )
    assert await registry.backed(market.channel.id, world.bob.address) == deposits
    rated = [e for e in await registry.events() if e.name == "Rated"][-1]
    assert (rated.args["value"], rated.args["paid"]) == (100, 10**30)
    spent = market.session(paid_forward=1)
    with pytest.raises(TransactionReverted, match="deposits back no more ratings"):
        await registry.rate(world.alice, spent, market.channel, *market.both(spent), 5)
    # The other party's ratings of alice have the whole deposits to weigh on.
    await registry.rate(world.bob, spent, market.channel, *market.both(spent), 3)
    assert await registry.score(world.alice.address, market.token) == Score(3, 1, 1)
    # A top-up backs more.
    funded = await world.fund_b(market.channel, 50)
    more = market.session(paid_forward=80)
    await registry.rate(world.alice, more, funded, *market.both(more), 4)
    assert await registry.backed(market.channel.id, world.bob.address) == deposits + 50


async def test_the_channel_state_must_be_the_hubs_and_not_settled(market: Market) -> None:
    world, registry = market.world, market.registry
    session = market.session()
    signatures = market.both(session)
    inflated = replace(market.channel, deposit_a=market.channel.deposit_a * 1000)
    with pytest.raises(TransactionReverted, match="stale or wrong channel state"):
        await registry.rate(world.alice, session, inflated, *signatures, 5)
    balance_a, balance_b = market.channel.split(Closing(0, 300, 0))
    await world.hub.cooperative_close(
        world.bob,
        market.channel,
        balance_a,
        balance_b,
        world.hub.sign_settlement(world.alice, market.channel.id, balance_a, balance_b),
        world.hub.sign_settlement(world.bob, market.channel.id, balance_a, balance_b),
    )
    with pytest.raises(TransactionReverted, match="channel already settled"):
        await registry.rate(world.alice, session, market.channel, *signatures, 5)
    assert await registry.score(world.bob.address, market.token) == Score(0, 0, 0)


async def test_a_closing_channel_is_rated_with_its_closing_data(market: Market) -> None:
    world, registry = market.world, market.registry
    closed = await world.hub.close(world.alice, market.channel, 0, 0, None)
    closing = await world.closing_of(closed)
    session = market.session()
    signatures = market.both(session)
    with pytest.raises(TransactionReverted, match="stale or wrong channel state"):
        await registry.rate(world.alice, session, market.channel, *signatures, 5)
    await registry.rate(world.alice, session, market.channel, *signatures, 5, closing=closing)
    assert await registry.score(world.bob.address, market.token) == Score(1_500, 300, 1)


async def test_scores_are_kept_apart_by_the_channels_asset(market: Market) -> None:
    world, registry = market.world, market.registry
    in_eth = await world.channel(1_000, token=False)
    session = replace(market.session(paid_forward=400), channel_id=in_eth.id)
    await registry.rate(world.alice, session, in_eth, *market.both(session), 2)
    assert await registry.score(world.bob.address, NATIVE_TOKEN) == Score(800, 400, 1)
    # Value in one asset says nothing of value in another (anyone can mint a token).
    assert await registry.score(world.bob.address, market.token) == Score(0, 0, 0)
    rated = [e for e in await registry.events() if e.name == "Rated"]
    assert rated[0].args["asset"] == NATIVE_TOKEN
