"""ChannelHub at its edges, where single-character bugs hide: a challenge or a settle in
the block stamped exactly at the deadline and one second either side; every closing
rule for party b as well as party a; a total that goes down, or stays equal.
"""

from __future__ import annotations

import pytest

from m2mpay.chain import NATIVE_TOKEN, Closing, OnchainChannel
from m2mpay.errors import TransactionReverted
from tests.conformance.exact_clock import EXACT_CLOCK_LEDGERS, next_block_at
from tests.conftest import UNIT, World


async def _closed_by(
    world: World, closer: str, period: int = 100
) -> tuple[OnchainChannel, Closing]:
    """A channel both fund, closed by `closer` ("a" or "b") claiming nothing was paid."""
    channel = await world.fund_b(await world.channel(10 * UNIT, period=period), 10 * UNIT)
    key = world.alice if closer == "a" else world.bob
    closing = await world.closing_of(await world.hub.close(key, channel, 0, 0, None))
    return channel, closing


@EXACT_CLOCK_LEDGERS
@pytest.mark.parametrize("cheater", ["a", "b"])
async def test_a_challenge_at_exactly_the_deadline_counts(world: World, cheater: str) -> None:
    channel, closing = await _closed_by(world, cheater)
    cheat_key, victim = (world.alice, world.bob) if cheater == "a" else (world.bob, world.alice)
    newest = world.hub.sign_balance_proof(cheat_key, channel.id, 3 * UNIT)
    async with next_block_at(world.ledger, closing.deadline):
        await world.hub.challenge(victim, channel, closing, cheat_key.address, 3 * UNIT, newest)
    paid = (3 * UNIT, 0) if cheater == "a" else (0, 3 * UNIT)
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(
        channel, Closing(closing.deadline, *paid)
    )


@EXACT_CLOCK_LEDGERS
@pytest.mark.parametrize("cheater", ["a", "b"])
async def test_a_challenge_one_second_late_is_refused(world: World, cheater: str) -> None:
    channel, closing = await _closed_by(world, cheater)
    cheat_key, victim = (world.alice, world.bob) if cheater == "a" else (world.bob, world.alice)
    newest = world.hub.sign_balance_proof(cheat_key, channel.id, 3 * UNIT)
    state = await world.hub.state_hash(channel.id)
    # No `match`: the ledger learns a revert's reason by replaying the call on the
    # block before, whose clock is still inside the period on the embedded chain.
    with pytest.raises(TransactionReverted) as refused:
        async with next_block_at(world.ledger, closing.deadline + 1):
            await world.hub.challenge(victim, channel, closing, cheat_key.address, 3 * UNIT, newest)
    assert refused.value.tx_hash is not None  # mined and reverted, not refused on sending
    receipt = await world.ledger.wait_for_receipt(refused.value.tx_hash)
    assert await world.ledger.block_timestamp(receipt.block_number) == closing.deadline + 1
    assert await world.hub.state_hash(channel.id) == state


@EXACT_CLOCK_LEDGERS
async def test_settle_at_exactly_the_deadline_is_refused_and_one_second_later_pays(
    world: World,
) -> None:
    channel, closing = await _closed_by(world, "b", period=40)
    with pytest.raises(TransactionReverted, match="challenge period not over"):
        async with next_block_at(world.ledger, closing.deadline):
            await world.hub.settle(world.carol, channel, closing)
    bob_before = await world.token.balance_of(world.bob.address)
    async with next_block_at(world.ledger, closing.deadline + 1):
        await world.hub.settle(world.carol, channel, closing)
    assert await world.token.balance_of(world.bob.address) == bob_before + 10 * UNIT
    assert await world.hub.is_settled(channel.id)


async def test_a_watcher_defends_party_a_against_b_too(world: World) -> None:
    """The mirror of the EV case: bob (b) paid alice 6, then closes claiming 1."""
    channel = await world.fund_b(await world.channel(10 * UNIT, period=50), 10 * UNIT)
    proofs = {t: world.hub.sign_balance_proof(world.bob, channel.id, t * UNIT) for t in (1, 6)}
    closing = await world.closing_of(await world.hub.close(world.bob, channel, 0, 1 * UNIT, None))
    await world.hub.challenge(world.carol, channel, closing, world.bob.address, 6 * UNIT, proofs[6])
    closing = Closing(closing.deadline, 0, 6 * UNIT)
    await world.ledger.advance_time(51)
    alice_before = await world.token.balance_of(world.alice.address)
    bob_before = await world.token.balance_of(world.bob.address)
    await world.hub.settle(world.carol, channel, closing)
    assert await world.token.balance_of(world.alice.address) == alice_before + 16 * UNIT
    assert await world.token.balance_of(world.bob.address) == bob_before + 4 * UNIT


@pytest.mark.parametrize("party", ["a", "b"])
@pytest.mark.parametrize("step", [0, -1], ids=["equal", "lower"])
async def test_a_challenge_must_raise_the_total_for_either_party(
    world: World, party: str, step: int
) -> None:
    """Equal is not newer (a replayed proof) and lower is a rollback, for a and for b."""
    channel = await world.fund_b(await world.channel(10 * UNIT), 10 * UNIT)
    key = world.alice if party == "a" else world.bob
    claimed = (4 * UNIT, 0) if party == "a" else (0, 4 * UNIT)
    # The closer is the other party, holding the payer's proof of 4.
    closer = world.bob if party == "a" else world.alice
    held = world.hub.sign_balance_proof(key, channel.id, 4 * UNIT)
    closing = await world.closing_of(await world.hub.close(closer, channel, *claimed, held))
    assert (closing.transferred_a, closing.transferred_b) == claimed
    total = 4 * UNIT + step
    proof = world.hub.sign_balance_proof(key, channel.id, total)
    state = await world.hub.state_hash(channel.id)
    with pytest.raises(TransactionReverted, match="proof is not newer"):
        await world.hub.challenge(world.carol, channel, closing, key.address, total, proof)
    assert await world.hub.state_hash(channel.id) == state
    # One unit more is newer: the rule is a strict increase, not a refusal of all.
    more = world.hub.sign_balance_proof(key, channel.id, 4 * UNIT + 1)
    await world.hub.challenge(world.carol, channel, closing, key.address, 4 * UNIT + 1, more)


@pytest.mark.parametrize("party", ["a", "b"])
async def test_a_challenge_proof_must_be_signed_by_the_party_it_raises(
    world: World, party: str
) -> None:
    channel, closing = await _closed_by(world, "a" if party == "b" else "b")
    key, other = (world.alice, world.bob) if party == "a" else (world.bob, world.alice)
    by_other = world.hub.sign_balance_proof(other, channel.id, 2 * UNIT)
    with pytest.raises(TransactionReverted, match="proof not signed by the party"):
        await world.hub.challenge(world.carol, channel, closing, key.address, 2 * UNIT, by_other)
    await world.hub.challenge(
        world.carol,
        channel,
        closing,
        key.address,
        2 * UNIT,
        world.hub.sign_balance_proof(key, channel.id, 2 * UNIT),
    )


@pytest.mark.parametrize("closer", ["a", "b"])
async def test_a_closer_needs_no_proof_for_a_zero_peer_total_and_one_for_more(
    world: World, closer: str
) -> None:
    channel = await world.fund_b(await world.channel(10 * UNIT), 10 * UNIT)
    key = world.alice if closer == "a" else world.bob
    own_claim = (UNIT, 0) if closer == "a" else (0, UNIT)
    peer_claim = (0, UNIT) if closer == "a" else (UNIT, 0)
    with pytest.raises(TransactionReverted, match="bad signature v"):  # no proof at all
        await world.hub.close(key, channel, *peer_claim, None)
    forged = world.hub.sign_balance_proof(key, channel.id, UNIT)  # signed by the closer
    with pytest.raises(TransactionReverted, match="proof not signed by"):
        await world.hub.close(key, channel, *peer_claim, forged)
    # The closer's own total needs no proof, whatever it claims.
    closing = await world.closing_of(await world.hub.close(key, channel, *own_claim, None))
    assert (closing.transferred_a, closing.transferred_b) == own_claim


async def test_a_deposit_by_b_is_credited_to_b_and_by_a_to_a(world: World) -> None:
    channel = await world.channel(3 * UNIT)
    await world.token.approve(world.alice, world.hub.address, 2 * UNIT)
    await world.hub.deposit(world.alice, channel, world.alice.address, 2 * UNIT)
    channel = channel.with_deposit(world.alice.address, 2 * UNIT)
    channel = await world.fund_b(channel, 7 * UNIT)
    assert (channel.deposit_a, channel.deposit_b) == (5 * UNIT, 7 * UNIT)
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)
    await world.token.approve(world.carol, world.hub.address, UNIT)
    with pytest.raises(TransactionReverted, match="not a party of the channel"):
        await world.hub.deposit(world.carol, channel, world.carol.address, UNIT)


# -- refusals a later check would also stop, named for what they are (errors are part of
# the interface: a client shows the reason)


async def test_a_permit_for_a_native_channel_is_refused_by_name(world: World) -> None:
    deadline = await world.ledger.block_timestamp() + 600
    permit = await world.token.sign_permit(world.alice, world.hub.address, UNIT, deadline)
    native = OnchainChannel(
        world.alice.address, world.bob.address, NATIVE_TOKEN, 60, 77, deposit_a=UNIT
    )
    with pytest.raises(TransactionReverted, match="permit needs a token"):
        await world.hub.open(world.alice, native, permit=permit, permit_deadline=deadline)
    opened = await world.channel(UNIT, token=False)
    with pytest.raises(TransactionReverted, match="permit needs a token"):
        await world.hub.deposit(
            world.bob, opened, world.bob.address, UNIT, permit=permit, permit_deadline=deadline
        )


async def test_a_challenge_of_an_open_channel_is_refused_by_name(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    proof = world.hub.sign_balance_proof(world.alice, channel.id, UNIT)
    with pytest.raises(TransactionReverted, match="channel is not closing"):
        await world.hub.challenge(
            world.bob, channel, Closing(0, 0, 0), world.alice.address, UNIT, proof
        )
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)
