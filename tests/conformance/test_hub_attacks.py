"""ChannelHub against a cheating peer: replays, forged and malleable signatures,
overflowing and zero amounts, a token that refuses a payout."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import vyper

from m2mpay.chain import (
    ChannelHub,
    Closing,
    OnchainChannel,
    PayoutDeferred,
    Withdrawn,
    deploy_hub,
)
from m2mpay.chain.abi import ContractInterface
from m2mpay.crypto import (
    Address,
    PrivateKey,
    Signature,
    balance_proof_digest,
    channel_domain,
    settlement_digest,
)
from m2mpay.crypto.signature import SECP256K1_N
from m2mpay.errors import TransactionReverted
from tests.conftest import UNIT, World

MAX_UINT = 2**256 - 1


def _raw(signature: Signature) -> tuple[bytes, bytes, int]:
    return (signature.r, signature.s, signature.v)


async def _close_raw(world: World, channel: OnchainChannel, sig: tuple[bytes, bytes, int]) -> None:
    """Bob closes claiming alice paid him 1 unit, with a hand-built signature tuple."""
    data = world.hub.interface.encode_call("close", channel.as_abi(), UNIT, 0, sig)
    await world.ledger.transact(world.bob, world.hub.address, data, gas=80_000)


async def test_proof_of_another_channel_is_refused(world: World) -> None:
    first = await world.channel(10 * UNIT)
    second = await world.channel(10 * UNIT)
    proof_for_first = world.hub.sign_balance_proof(world.alice, first.id, UNIT)
    with pytest.raises(TransactionReverted, match="proof not signed by a"):
        await world.hub.close(world.bob, second, UNIT, 0, proof_for_first)


async def test_proof_for_another_chain_is_refused(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    other_chain = channel_domain(world.ledger.chain_id + 1, world.hub.address)
    proof = world.alice.sign_digest(balance_proof_digest(other_chain, channel.id, UNIT))
    with pytest.raises(TransactionReverted, match="proof not signed by a"):
        await world.hub.close(world.bob, channel, UNIT, 0, proof)


async def test_proof_for_another_hub_is_refused(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    other_hub, _ = await deploy_hub(world.ledger, world.owner)
    proof = other_hub.sign_balance_proof(world.alice, channel.id, UNIT)
    with pytest.raises(TransactionReverted, match="proof not signed by a"):
        await world.hub.close(world.bob, channel, UNIT, 0, proof)


async def test_settlement_for_another_chain_is_refused(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    other_chain = channel_domain(world.ledger.chain_id + 1, world.hub.address)
    split = (5 * UNIT, 5 * UNIT)
    sig_a = world.alice.sign_digest(settlement_digest(other_chain, channel.id, *split))
    sig_b = world.bob.sign_digest(settlement_digest(other_chain, channel.id, *split))
    with pytest.raises(TransactionReverted, match="settlement not signed by a"):
        await world.hub.cooperative_close(world.bob, channel, *split, sig_a, sig_b)


async def test_proof_by_a_stranger_key_is_refused(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    proof = world.hub.sign_balance_proof(PrivateKey.generate(), channel.id, UNIT)
    with pytest.raises(TransactionReverted, match="proof not signed by a"):
        await world.hub.close(world.bob, channel, UNIT, 0, proof)


async def test_malleable_twin_of_a_valid_proof_is_refused(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    good = world.hub.sign_balance_proof(world.alice, channel.id, UNIT)
    high_s = (SECP256K1_N - int.from_bytes(good.s, "big")).to_bytes(32, "big")
    with pytest.raises(TransactionReverted, match="malleable signature"):
        await _close_raw(world, channel, (good.r, high_s, 55 - good.v))
    # The original is fine.
    await _close_raw(world, channel, _raw(good))


@pytest.mark.parametrize(
    ("sig", "reason"),
    [
        ((b"\x01" * 32, b"\x01" * 32, 0), "bad signature v"),
        ((b"\x01" * 32, b"\x01" * 32, 29), "bad signature v"),
        ((bytes(32), b"\x01" * 32, 27), "invalid signature"),
    ],
)
async def test_garbage_signatures_are_refused(
    world: World, sig: tuple[bytes, bytes, int], reason: str
) -> None:
    channel = await world.channel(10 * UNIT)
    with pytest.raises(TransactionReverted, match=reason):
        await _close_raw(world, channel, sig)


async def test_overpaying_proofs_are_clamped_not_reverted(world: World) -> None:
    """Alice signs the largest total there is; settlement still pays, bob gets her deposit."""
    channel = await world.fund_b(await world.channel(10 * UNIT, period=10), 3 * UNIT)
    absurd = world.hub.sign_balance_proof(world.alice, channel.id, MAX_UINT)
    closing = await world.closing_of(await world.hub.close(world.bob, channel, MAX_UINT, 0, absurd))
    assert closing.transferred_a == MAX_UINT
    await world.ledger.advance_time(11)
    bob_before = await world.token.balance_of(world.bob.address)
    await world.hub.settle(world.bob, channel, closing)
    assert await world.token.balance_of(world.bob.address) == bob_before + 13 * UNIT


async def test_huge_totals_on_both_sides_cancel(world: World) -> None:
    channel = await world.fund_b(await world.channel(10 * UNIT, period=10), 3 * UNIT)
    from_alice = world.hub.sign_balance_proof(world.alice, channel.id, MAX_UINT)
    closing = await world.closing_of(
        await world.hub.close(world.bob, channel, MAX_UINT, MAX_UINT - UNIT, from_alice)
    )
    await world.ledger.advance_time(11)
    alice_before = await world.token.balance_of(world.alice.address)
    await world.hub.settle(world.bob, channel, closing)
    # Alice's total exceeds bob's by one unit: that unit is all that moves.
    assert await world.token.balance_of(world.alice.address) == alice_before + 9 * UNIT


async def test_overflowing_split_is_refused(world: World) -> None:
    channel = await world.channel(10 * UNIT)
    split = (MAX_UINT, 1)
    sig_a = world.hub.sign_settlement(world.alice, channel.id, *split)
    sig_b = world.hub.sign_settlement(world.bob, channel.id, *split)
    with pytest.raises(TransactionReverted):
        await world.hub.cooperative_close(world.bob, channel, *split, sig_a, sig_b)
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)


async def test_zero_totals_need_no_signature_and_zero_payouts_are_skipped(world: World) -> None:
    channel = await world.channel(10 * UNIT, period=10)
    closing = await world.closing_of(await world.hub.close(world.bob, channel, 0, 0, None))
    zero = world.hub.sign_balance_proof(world.alice, channel.id, 0)
    with pytest.raises(TransactionReverted, match="proof is not newer"):
        await world.hub.challenge(world.bob, channel, closing, world.alice.address, 0, zero)
    await world.ledger.advance_time(11)
    receipt = await world.hub.settle(world.bob, channel, closing)
    transfers = [log for log in receipt.logs if log.address == world.token.address]
    assert len(transfers) == 1  # only alice's 10; bob's zero payout sends nothing


# -- a token that misbehaves


@lru_cache(maxsize=1)
def _misbehaving_token() -> tuple[ContractInterface, bytes]:
    source = (Path(__file__).parents[1] / "contracts" / "MisbehavingToken.vy").read_text()
    out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    return ContractInterface(out["abi"]), bytes.fromhex(out["bytecode"].removeprefix("0x"))


class _BadToken:
    def __init__(self, world: World) -> None:
        self.world = world
        self.abi, self.bytecode = _misbehaving_token()
        self.address: Any = None

    async def deploy(self) -> _BadToken:
        receipt = await self.world.ledger.deploy(self.world.owner, self.bytecode, gas=1_000_000)
        self.address = receipt.contract_address
        return self

    async def call(self, signer: PrivateKey, name: str, *args: Any) -> None:
        data = self.abi.encode_call(name, *args)
        await self.world.ledger.transact(signer, self.address, data, gas=100_000)

    async def balance(self, who: Any) -> int:
        data = await self.world.ledger.call(self.address, self.abi.encode_call("balanceOf", who))
        return int(self.abi.decode_output("balanceOf", data)[0])


async def _bad_token_channel(world: World, token: _BadToken, deposit: int) -> OnchainChannel:
    channel = OnchainChannel(
        world.alice.address, world.bob.address, token.address, 10, 1, deposit_a=deposit
    )
    await token.call(world.owner, "mint", world.alice.address, deposit)
    await token.call(world.alice, "approve", world.hub.address, deposit)
    await world.hub.open(world.alice, channel)
    return channel


async def test_refused_payout_is_kept_for_withdraw_and_does_not_block_the_peer(
    world: World,
) -> None:
    token = await _BadToken(world).deploy()
    channel = await _bad_token_channel(world, token, 10 * UNIT)
    await token.call(world.owner, "set_refuse_to", world.bob.address)
    split = (4 * UNIT, 6 * UNIT)
    hub: ChannelHub = world.hub
    receipt = await hub.cooperative_close(
        world.alice,
        channel,
        *split,
        hub.sign_settlement(world.alice, channel.id, *split),
        hub.sign_settlement(world.bob, channel.id, *split),
    )
    assert await token.balance(world.alice.address) == 4 * UNIT
    assert await token.balance(world.bob.address) == 0
    assert await hub.deferred(token.address, world.bob.address) == 6 * UNIT
    deferred = [e for e in await hub.events(receipt.block_number) if isinstance(e, PayoutDeferred)]
    assert [(e.recipient, e.amount) for e in deferred] == [(world.bob.address, 6 * UNIT)]
    with pytest.raises(TransactionReverted, match="nothing to withdraw"):
        await hub.withdraw(world.carol, token.address, world.carol.address)
    # Sent to the zero address the payout would be burnt: refused, and still owed.
    with pytest.raises(TransactionReverted, match="withdraw to zero address"):
        await hub.withdraw(world.bob, token.address, Address(bytes(20)))
    assert await hub.deferred(token.address, world.bob.address) == 6 * UNIT
    # Bob takes his money to another address of his.
    withdrawal = await hub.withdraw(world.bob, token.address, world.carol.address)
    assert await token.balance(world.carol.address) == 6 * UNIT
    assert await hub.deferred(token.address, world.bob.address) == 0
    withdrawn = [e for e in await hub.events(withdrawal.block_number) if isinstance(e, Withdrawn)]
    assert [(e.recipient, e.receiver, e.amount) for e in withdrawn] == [
        (world.bob.address, world.carol.address, 6 * UNIT)
    ]


async def test_deposits_that_would_overflow_are_refused(world: World) -> None:
    token = await _BadToken(world).deploy()
    await token.call(world.owner, "set_fake_transfer_from", True)
    half = 2**255
    channel = OnchainChannel(
        world.alice.address, world.bob.address, token.address, 10, 1, deposit_a=half
    )
    await world.hub.open(world.alice, channel)
    with pytest.raises(TransactionReverted):
        await world.hub.deposit(world.bob, channel, world.bob.address, half)
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)
    # Just below the limit is fine, and settlement of the full total does not overflow.
    await world.hub.deposit(world.bob, channel, world.bob.address, half - 1)
    funded = channel.with_deposit(world.bob.address, half - 1)
    closing = await world.closing_of(await world.hub.close(world.bob, funded, 0, 0, None))
    await world.ledger.advance_time(11)
    await world.hub.settle(world.bob, funded, Closing(closing.deadline, 0, 0))
    assert await world.hub.is_settled(funded.id)
