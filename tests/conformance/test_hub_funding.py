"""ChannelHub funding: open (approve, permit, ETH), top-up, the second party's deposit."""

from __future__ import annotations

import pytest

from m2mpay.chain import (
    NATIVE_TOKEN,
    ChannelDeposited,
    ChannelOpened,
    OnchainChannel,
)
from m2mpay.crypto import ZERO_ADDRESS, channel_domain, channel_id
from m2mpay.errors import TransactionReverted
from tests.conftest import UNIT, World


async def test_open_with_approved_token_records_state_and_event(world: World) -> None:
    before = await world.token.balance_of(world.alice.address)
    channel = await world.channel(10 * UNIT, period=120)
    assert await world.token.balance_of(world.alice.address) == before - 10 * UNIT
    assert await world.token.balance_of(world.hub.address) == 10 * UNIT
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)
    events = [e for e in await world.hub.events(0) if isinstance(e, ChannelOpened)]
    assert len(events) == 1
    opened = events[0]
    assert (opened.channel_id, opened.a, opened.b, opened.token) == (
        channel.id,
        world.alice.address,
        world.bob.address,
        world.token.address,
    )
    assert (opened.challenge_period, opened.nonce, opened.deposit_a) == (
        120,
        channel.nonce,
        10 * UNIT,
    )


async def test_channel_id_and_domain_agree_with_the_contract(world: World) -> None:
    channel = OnchainChannel(world.alice.address, world.bob.address, world.token.address, 60, 42)
    assert await world.hub.contract_channel_id(channel) == channel_id(
        world.alice.address, world.bob.address, world.token.address, 60, 42
    )
    expected = channel_domain(world.ledger.chain_id, world.hub.address).separator
    assert await world.hub.domain_separator() == expected


async def test_open_with_permit_needs_no_approve(world: World) -> None:
    channel = OnchainChannel(
        world.alice.address, world.bob.address, world.token.address, 60, 7, deposit_a=3 * UNIT
    )
    deadline = await world.ledger.block_timestamp() + 600
    permit = await world.token.sign_permit(world.alice, world.hub.address, 3 * UNIT, deadline)
    await world.hub.open(world.alice, channel, permit=permit, permit_deadline=deadline)
    assert await world.token.balance_of(world.hub.address) == 3 * UNIT
    assert await world.token.allowance(world.alice.address, world.hub.address) == 0


async def test_open_with_native_eth(world: World) -> None:
    channel = await world.channel(2 * UNIT, token=False)
    assert channel.token == NATIVE_TOKEN
    assert await world.ledger.balance(world.hub.address) == 2 * UNIT
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)


async def test_eth_value_must_match_the_deposit(world: World) -> None:
    channel = OnchainChannel(
        world.alice.address, world.bob.address, NATIVE_TOKEN, 60, 9, deposit_a=2 * UNIT
    )
    abi = world.hub.interface
    data = abi.encode_call("open", channel.as_abi())
    with pytest.raises(TransactionReverted, match="ETH value does not match deposit"):
        await world.ledger.transact(world.alice, world.hub.address, data, gas=150_000, value=UNIT)
    token_channel = OnchainChannel(
        world.alice.address, world.bob.address, world.token.address, 60, 9, deposit_a=UNIT
    )
    await world.token.approve(world.alice, world.hub.address, UNIT)
    data = abi.encode_call("open", token_channel.as_abi())
    with pytest.raises(TransactionReverted, match="ETH sent to a token channel"):
        await world.ledger.transact(world.alice, world.hub.address, data, gas=150_000, value=1)


async def test_a_host_may_fund_a_channel_for_a_device(world: World) -> None:
    """The funder need not be a party: carol funds alice's channel, alice owns the deposit."""
    channel = OnchainChannel(
        world.alice.address, world.bob.address, world.token.address, 60, 11, deposit_a=UNIT
    )
    carol_before = await world.token.balance_of(world.carol.address)
    await world.token.approve(world.carol, world.hub.address, UNIT)
    await world.hub.open(world.carol, channel)
    assert await world.token.balance_of(world.carol.address) == carol_before - UNIT
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)


async def test_second_party_deposit_and_top_up(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    channel = await world.fund_b(channel, 4 * UNIT)
    assert (channel.deposit_a, channel.deposit_b) == (10 * UNIT, 4 * UNIT)
    await world.token.approve(world.alice, world.hub.address, UNIT)
    receipt = await world.hub.deposit(world.alice, channel, world.alice.address, UNIT)
    channel = channel.with_deposit(world.alice.address, UNIT)
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)
    deposited = [
        e
        for e in await world.hub.events(receipt.block_number, receipt.block_number)
        if isinstance(e, ChannelDeposited)
    ]
    assert len(deposited) == 1
    event = deposited[0]
    assert (event.participant, event.amount, event.deposit_a, event.deposit_b) == (
        world.alice.address,
        UNIT,
        11 * UNIT,
        4 * UNIT,
    )


async def test_top_up_with_permit(world: World) -> None:
    channel = await world.channel(UNIT)
    deadline = await world.ledger.block_timestamp() + 600
    permit = await world.token.sign_permit(world.bob, world.hub.address, 2 * UNIT, deadline)
    await world.hub.deposit(
        world.bob, channel, world.bob.address, 2 * UNIT, permit=permit, permit_deadline=deadline
    )
    funded = channel.with_deposit(world.bob.address, 2 * UNIT)
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(funded)


async def test_top_up_of_native_channel(world: World) -> None:
    channel = await world.channel(UNIT, token=False)
    await world.hub.deposit(world.bob, channel, world.bob.address, 3 * UNIT)
    assert await world.ledger.balance(world.hub.address) == 4 * UNIT


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"deposit_a": 0}, "zero deposit"),
        ({"b": None}, "parties must differ"),
        ({"challenge_period": 0}, "zero challenge period"),
        ({"challenge_period": 31536001}, "challenge period too long"),
        ({"deposit_b": 1}, "b funds with deposit"),
        ({"a": ZERO_ADDRESS}, "zero address party"),
        ({"b": ZERO_ADDRESS}, "zero address party"),
    ],
)
async def test_invalid_open_is_refused(
    world: World, change: dict[str, object], reason: str
) -> None:
    fields: dict[str, object] = {
        "a": world.alice.address,
        "b": world.bob.address,
        "token": world.token.address,
        "challenge_period": 60,
        "nonce": 1,
        "deposit_a": UNIT,
        "deposit_b": 0,
    }
    fields.update(change)
    if fields["b"] is None:
        fields["b"] = world.alice.address
    channel = OnchainChannel(**fields)  # type: ignore[arg-type]
    await world.token.approve(world.alice, world.hub.address, UNIT)
    with pytest.raises(TransactionReverted, match=reason):
        await world.hub.open(world.alice, channel)


async def test_the_longest_challenge_period_is_allowed(world: World) -> None:
    """One second short of the refused period above: the limit itself is valid."""
    channel = await world.channel(UNIT, period=31_536_000)
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)


async def test_a_channel_id_opens_once(world: World) -> None:
    channel = await world.channel(UNIT, nonce=5)
    await world.token.approve(world.alice, world.hub.address, UNIT)
    with pytest.raises(TransactionReverted, match="channel id already used"):
        await world.hub.open(world.alice, channel)


async def test_deposit_refusals_change_nothing(world: World) -> None:
    channel = await world.channel(UNIT)
    await world.token.approve(world.bob, world.hub.address, 10 * UNIT)
    state = await world.hub.state_hash(channel.id)
    with pytest.raises(TransactionReverted, match="zero deposit"):
        await world.hub.deposit(world.bob, channel, world.bob.address, 0)
    with pytest.raises(TransactionReverted, match="not a party of the channel"):
        await world.hub.deposit(world.bob, channel, world.carol.address, UNIT)
    stale = channel.with_deposit(world.bob.address, 1)  # claims a deposit that never happened
    with pytest.raises(TransactionReverted, match="stale or wrong channel state"):
        await world.hub.deposit(world.bob, stale, world.bob.address, UNIT)
    unknown = OnchainChannel(
        world.alice.address, world.bob.address, world.token.address, 60, 999_999, deposit_a=UNIT
    )
    with pytest.raises(TransactionReverted, match="unknown channel"):
        await world.hub.deposit(world.bob, unknown, world.bob.address, UNIT)
    with pytest.raises(TransactionReverted, match="allowance exceeded"):
        await world.hub.deposit(world.bob, channel, world.bob.address, 11 * UNIT)
    assert await world.hub.state_hash(channel.id) == state
    assert await world.token.balance_of(world.hub.address) == UNIT
