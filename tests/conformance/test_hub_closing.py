"""ChannelHub closing: cooperative close, unilateral close, challenge, settle, withdraw."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2mpay.chain import ChannelChallenged, ChannelClosing, ChannelSettled, Closing
from m2mpay.chain.hub import SETTLED_MARKER
from m2mpay.errors import TransactionReverted
from tests.conftest import UNIT, World


async def test_cooperative_close_pays_both_in_one_transaction(world: World) -> None:
    channel = await world.fund_b(await world.channel(10 * UNIT), 2 * UNIT)
    alice_before = await world.token.balance_of(world.alice.address)
    bob_before = await world.token.balance_of(world.bob.address)
    split = (7 * UNIT, 5 * UNIT)
    sig_a = world.hub.sign_settlement(world.alice, channel.id, *split)
    sig_b = world.hub.sign_settlement(world.bob, channel.id, *split)
    # Anyone may submit the doubly signed split: here a third party does.
    receipt = await world.hub.cooperative_close(world.carol, channel, *split, sig_a, sig_b)
    assert await world.token.balance_of(world.alice.address) == alice_before + 7 * UNIT
    assert await world.token.balance_of(world.bob.address) == bob_before + 5 * UNIT
    assert await world.token.balance_of(world.hub.address) == 0
    assert await world.hub.is_settled(channel.id)
    settled = [
        e for e in await world.hub.events(receipt.block_number) if isinstance(e, ChannelSettled)
    ]
    assert [(e.balance_a, e.balance_b, e.cooperative) for e in settled] == [(*split, True)]


async def test_cooperative_close_of_native_channel(world: World) -> None:
    channel = await world.channel(4 * UNIT, token=False)
    bob_before = await world.ledger.balance(world.bob.address)
    split = (UNIT, 3 * UNIT)
    sig_a = world.hub.sign_settlement(world.alice, channel.id, *split)
    sig_b = world.hub.sign_settlement(world.bob, channel.id, *split)
    await world.hub.cooperative_close(world.carol, channel, *split, sig_a, sig_b)
    assert await world.ledger.balance(world.bob.address) == bob_before + 3 * UNIT
    assert await world.ledger.balance(world.hub.address) == 0


async def test_cooperative_close_refusals(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    hub = world.hub
    good = hub.sign_settlement(world.alice, channel.id, 6 * UNIT, 4 * UNIT)
    good_b = hub.sign_settlement(world.bob, channel.id, 6 * UNIT, 4 * UNIT)
    with pytest.raises(TransactionReverted, match="split does not match deposits"):
        await hub.cooperative_close(
            world.bob,
            channel,
            6 * UNIT,
            5 * UNIT,
            hub.sign_settlement(world.alice, channel.id, 6 * UNIT, 5 * UNIT),
            hub.sign_settlement(world.bob, channel.id, 6 * UNIT, 5 * UNIT),
        )
    with pytest.raises(TransactionReverted, match="settlement not signed by a"):
        await hub.cooperative_close(world.bob, channel, 6 * UNIT, 4 * UNIT, good_b, good_b)
    with pytest.raises(TransactionReverted, match="settlement not signed by b"):
        await hub.cooperative_close(world.bob, channel, 6 * UNIT, 4 * UNIT, good, good)
    # Signatures over one split do not carry over to another.
    with pytest.raises(TransactionReverted, match="settlement not signed by a"):
        await hub.cooperative_close(world.bob, channel, 4 * UNIT, 6 * UNIT, good, good_b)
    assert await hub.state_hash(channel.id) == await hub.expected_state_hash(channel)
    await hub.cooperative_close(world.bob, channel, 6 * UNIT, 4 * UNIT, good, good_b)
    with pytest.raises(TransactionReverted, match="channel already settled"):
        await hub.cooperative_close(world.bob, channel, 6 * UNIT, 4 * UNIT, good, good_b)


async def test_settled_channel_cannot_be_reopened_or_reused(world: World) -> None:
    channel = await world.channel(2 * UNIT)
    split = (UNIT, UNIT)
    await world.hub.cooperative_close(
        world.bob,
        channel,
        *split,
        world.hub.sign_settlement(world.alice, channel.id, *split),
        world.hub.sign_settlement(world.bob, channel.id, *split),
    )
    assert await world.hub.state_hash(channel.id) == SETTLED_MARKER
    await world.token.approve(world.alice, world.hub.address, 2 * UNIT)
    with pytest.raises(TransactionReverted, match="channel id already used"):
        await world.hub.open(world.alice, channel)
    with pytest.raises(TransactionReverted, match="channel already settled"):
        await world.hub.close(world.alice, channel, 0, 0, None)


async def test_honest_unilateral_close_needs_no_challenge(world: World) -> None:
    """Bob is gone; alice closes with what she paid and bob's newest proof, waits, settles."""
    channel = await world.fund_b(await world.channel(10 * UNIT, period=50), 5 * UNIT)
    paid_by_bob = world.hub.sign_balance_proof(world.bob, channel.id, 2 * UNIT)
    receipt = await world.hub.close(world.alice, channel, 3 * UNIT, 2 * UNIT, paid_by_bob)
    closing = await world.closing_of(receipt)
    assert closing.deadline == await world.ledger.block_timestamp(receipt.block_number) + 50
    assert (closing.transferred_a, closing.transferred_b) == (3 * UNIT, 2 * UNIT)
    with pytest.raises(TransactionReverted, match="challenge period not over"):
        await world.hub.settle(world.alice, channel, closing)
    await world.ledger.advance_time(51)
    alice_before = await world.token.balance_of(world.alice.address)
    bob_before = await world.token.balance_of(world.bob.address)
    await world.hub.settle(world.alice, channel, closing)
    # alice: 10 - 3 + 2 = 9; bob: 5 - 2 + 3 = 6
    assert await world.token.balance_of(world.alice.address) == alice_before + 9 * UNIT
    assert await world.token.balance_of(world.bob.address) == bob_before + 6 * UNIT
    assert await world.hub.is_settled(channel.id)


async def test_stale_close_loses_to_newer_state(world: World) -> None:
    """The EV case: the car (alice) paid the charger (bob) 6, then closes claiming it paid 1."""
    channel = await world.channel(10 * UNIT, period=100)
    proofs = {t: world.hub.sign_balance_proof(world.alice, channel.id, t * UNIT) for t in (1, 4, 6)}
    receipt = await world.hub.close(world.alice, channel, 1 * UNIT, 0, None)
    closing = await world.closing_of(receipt)
    # Bob answers with an intermediate proof first, then the newest one.
    await world.hub.challenge(world.bob, channel, closing, world.alice.address, 4 * UNIT, proofs[4])
    closing = Closing(closing.deadline, 4 * UNIT, 0)
    await world.hub.challenge(world.bob, channel, closing, world.alice.address, 6 * UNIT, proofs[6])
    closing = Closing(closing.deadline, 6 * UNIT, 0)
    # An older proof cannot roll the total back.
    with pytest.raises(TransactionReverted, match="proof is not newer"):
        await world.hub.challenge(
            world.alice, channel, closing, world.alice.address, 4 * UNIT, proofs[4]
        )
    challenged = [
        e for e in await world.hub.events(receipt.block_number) if isinstance(e, ChannelChallenged)
    ]
    assert [(e.challenger, e.transferred_a) for e in challenged] == [
        (world.bob.address, 4 * UNIT),
        (world.bob.address, 6 * UNIT),
    ]
    await world.ledger.advance_time(101)
    bob_before = await world.token.balance_of(world.bob.address)
    alice_before = await world.token.balance_of(world.alice.address)
    await world.hub.settle(world.carol, channel, closing)
    assert await world.token.balance_of(world.bob.address) == bob_before + 6 * UNIT
    assert await world.token.balance_of(world.alice.address) == alice_before + 4 * UNIT


async def test_a_watcher_defends_with_a_proof_signed_by_the_cheater(world: World) -> None:
    """Carol holds no key of the channel, only alice's signed proof: she can defend bob."""
    channel = await world.channel(10 * UNIT)
    newest = world.hub.sign_balance_proof(world.alice, channel.id, 8 * UNIT)
    closing = await world.closing_of(await world.hub.close(world.alice, channel, 0, 0, None))
    await world.hub.challenge(world.carol, channel, closing, world.alice.address, 8 * UNIT, newest)
    await world.ledger.advance_time(101)
    bob_before = await world.token.balance_of(world.bob.address)
    await world.hub.settle(world.carol, channel, Closing(closing.deadline, 8 * UNIT, 0))
    assert await world.token.balance_of(world.bob.address) == bob_before + 8 * UNIT


async def test_challenge_deadline_is_enforced(world: World) -> None:
    channel = await world.channel(10 * UNIT, period=30)
    newest = world.hub.sign_balance_proof(world.alice, channel.id, 5 * UNIT)
    closing = await world.closing_of(await world.hub.close(world.alice, channel, 0, 0, None))
    await world.ledger.advance_time(31)
    with pytest.raises(TransactionReverted, match="challenge period is over"):
        await world.hub.challenge(
            world.bob, channel, closing, world.alice.address, 5 * UNIT, newest
        )
    # The close stands as it was: alice keeps her 10.
    alice_before = await world.token.balance_of(world.alice.address)
    await world.hub.settle(world.bob, channel, closing)
    assert await world.token.balance_of(world.alice.address) == alice_before + 10 * UNIT


async def test_challenge_just_before_the_deadline_counts(world: World) -> None:
    channel = await world.channel(10 * UNIT, period=60)
    newest = world.hub.sign_balance_proof(world.alice, channel.id, 5 * UNIT)
    receipt = await world.hub.close(world.alice, channel, 0, 0, None)
    closing = await world.closing_of(receipt)
    await world.ledger.advance_time(50)
    assert await world.ledger.block_timestamp() < closing.deadline
    await world.hub.challenge(world.bob, channel, closing, world.alice.address, 5 * UNIT, newest)


async def test_closing_refusals_change_nothing(world: World) -> None:
    channel = await world.fund_b(await world.channel(10 * UNIT), UNIT)
    state = await world.hub.state_hash(channel.id)
    by_alice = world.hub.sign_balance_proof(world.alice, channel.id, UNIT)
    with pytest.raises(TransactionReverted, match="only a party can close"):
        await world.hub.close(world.carol, channel, 0, 0, None)
    # Bob closing must carry a proof signed by alice, not by himself.
    forged = world.hub.sign_balance_proof(world.bob, channel.id, UNIT)
    with pytest.raises(TransactionReverted, match="proof not signed by a"):
        await world.hub.close(world.bob, channel, UNIT, 0, forged)
    with pytest.raises(TransactionReverted, match="proof not signed by b"):
        await world.hub.close(world.alice, channel, 0, UNIT, by_alice)
    with pytest.raises(TransactionReverted, match="channel is not closing"):
        await world.hub.settle(world.alice, channel, Closing(0, 0, 0))
    assert await world.hub.state_hash(channel.id) == state


async def test_challenge_refusals_change_nothing(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    closing = await world.closing_of(await world.hub.close(world.alice, channel, UNIT, 0, None))
    state = await world.hub.state_hash(channel.id)
    hub = world.hub
    signed_by_bob = hub.sign_balance_proof(world.bob, channel.id, 2 * UNIT)
    with pytest.raises(TransactionReverted, match="proof not signed by the party"):
        await hub.challenge(
            world.bob, channel, closing, world.alice.address, 2 * UNIT, signed_by_bob
        )
    with pytest.raises(TransactionReverted, match="not a party of the channel"):
        await hub.challenge(
            world.bob, channel, closing, world.carol.address, 2 * UNIT, signed_by_bob
        )
    same = hub.sign_balance_proof(world.alice, channel.id, UNIT)
    with pytest.raises(TransactionReverted, match="proof is not newer"):
        await hub.challenge(world.bob, channel, closing, world.alice.address, UNIT, same)
    wrong_closing = Closing(closing.deadline, 0, 0)
    newer = hub.sign_balance_proof(world.alice, channel.id, 3 * UNIT)
    with pytest.raises(TransactionReverted, match="stale or wrong channel state"):
        await hub.challenge(world.bob, channel, wrong_closing, world.alice.address, 3 * UNIT, newer)
    assert await hub.state_hash(channel.id) == state
    events = [e for e in await hub.events(0) if isinstance(e, ChannelClosing)]
    assert len(events) == 1


async def test_settle_happens_once(world: World) -> None:
    channel = await world.channel(2 * UNIT, period=10)
    closing = await world.closing_of(await world.hub.close(world.alice, channel, 0, 0, None))
    await world.ledger.advance_time(11)
    await world.hub.settle(world.bob, channel, closing)
    with pytest.raises(TransactionReverted, match="channel already settled"):
        await world.hub.settle(world.bob, channel, closing)
    assert await world.token.balance_of(world.hub.address) == 0


async def test_native_dispute_pays_in_eth(world: World) -> None:
    channel = await world.channel(5 * UNIT, token=False, period=20)
    newest = world.hub.sign_balance_proof(world.alice, channel.id, 2 * UNIT)
    closing = await world.closing_of(await world.hub.close(world.alice, channel, 0, 0, None))
    await world.hub.challenge(world.bob, channel, closing, world.alice.address, 2 * UNIT, newest)
    await world.ledger.advance_time(21)
    bob_before = await world.ledger.balance(world.bob.address)
    await world.hub.settle(world.carol, channel, Closing(closing.deadline, 2 * UNIT, 0))
    assert await world.ledger.balance(world.bob.address) == bob_before + 2 * UNIT
    assert await world.ledger.balance(world.hub.address) == 0


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    deposit_a=st.integers(1, 10**6),
    deposit_b=st.integers(0, 10**6),
    transferred_a=st.integers(0, 3 * 10**6),
    transferred_b=st.integers(0, 3 * 10**6),
)
async def test_settlement_pays_what_the_rule_says_and_conserves_the_total(
    world: World, deposit_a: int, deposit_b: int, transferred_a: int, transferred_b: int
) -> None:
    channel = await world.channel(deposit_a, period=5)
    if deposit_b:
        channel = await world.fund_b(channel, deposit_b)
    proof = (
        world.hub.sign_balance_proof(world.alice, channel.id, transferred_a)
        if transferred_a
        else None
    )
    closing = await world.closing_of(
        await world.hub.close(world.bob, channel, transferred_a, transferred_b, proof)
    )
    await world.ledger.advance_time(6)
    before = (
        await world.token.balance_of(world.alice.address),
        await world.token.balance_of(world.bob.address),
    )
    await world.hub.settle(world.carol, channel, closing)
    paid = (
        await world.token.balance_of(world.alice.address) - before[0],
        await world.token.balance_of(world.bob.address) - before[1],
    )
    assert paid == channel.split(closing)
    assert sum(paid) == deposit_a + deposit_b
    assert min(paid) >= 0
