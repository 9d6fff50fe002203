"""Token at its edges: a permit at exactly its deadline and one second after, the
zero address refused as receiver and owner, allowance spent to the unit, an unlimited
allowance left unlimited, ownership that only the owner hands on."""

from __future__ import annotations

from typing import Any

import pytest

from m2mpay.chain.artifacts import load_artifact
from m2mpay.crypto import Address
from m2mpay.crypto.keys import PrivateKey
from m2mpay.errors import TransactionReverted
from tests.conformance.exact_clock import EXACT_CLOCK_LEDGERS, next_block_at
from tests.conftest import UNIT, World

ZERO = Address(b"\x00" * 20)
UNLIMITED = 2**256 - 1


async def _call(world: World, sender: PrivateKey, function: str, *args: Any) -> None:
    data = load_artifact("Token").interface.encode_call(function, *args)
    await world.ledger.transact(sender, world.token.address, data, gas=200_000)


@EXACT_CLOCK_LEDGERS
async def test_a_permit_is_good_at_exactly_its_deadline_and_not_a_second_later(
    world: World,
) -> None:
    deadline = await world.ledger.block_timestamp() + 100
    spender = world.carol.address
    on_time = await world.token.sign_permit(world.alice, spender, 5, deadline)
    async with next_block_at(world.ledger, deadline):
        await world.token.permit(world.carol, world.alice.address, spender, 5, deadline, on_time)
    assert await world.token.allowance(world.alice.address, spender) == 5
    late = await world.token.sign_permit(world.alice, spender, 9, deadline)  # the next nonce
    with pytest.raises(TransactionReverted) as refused:
        async with next_block_at(world.ledger, deadline + 1):
            await world.token.permit(world.carol, world.alice.address, spender, 9, deadline, late)
    assert refused.value.tx_hash is not None
    receipt = await world.ledger.wait_for_receipt(refused.value.tx_hash)
    assert await world.ledger.block_timestamp(receipt.block_number) == deadline + 1
    assert await world.token.allowance(world.alice.address, spender) == 5


async def test_the_zero_address_receives_nothing(world: World) -> None:
    with pytest.raises(TransactionReverted, match="transfer to zero address"):
        await world.token.transfer(world.alice, ZERO, UNIT)
    with pytest.raises(TransactionReverted, match="mint to zero address"):
        await world.token.mint(world.owner, ZERO, UNIT)
    assert await world.token.balance_of(world.alice.address) == 1_000 * UNIT
    assert await world.token.total_supply() == 3_000 * UNIT


async def test_a_permit_for_the_zero_owner_is_refused(world: World) -> None:
    # ecrecover returns the zero address for garbage: without the check, anyone could
    # set allowances of the zero address's (burnt) balance.
    deadline = await world.ledger.block_timestamp() + 600
    with pytest.raises(TransactionReverted, match="permit for zero address"):
        await _call(
            world, world.carol, "permit", ZERO, world.carol.address, 1, deadline,
            27, b"\x00" * 32, b"\x00" * 32,
        )  # fmt: skip


async def test_an_allowance_is_spent_to_the_unit(world: World) -> None:
    await world.token.approve(world.alice, world.carol.address, 5)
    args = (world.alice.address, world.bob.address)
    with pytest.raises(TransactionReverted, match="allowance exceeded"):
        await _call(world, world.carol, "transferFrom", *args, 6)
    await _call(world, world.carol, "transferFrom", *args, 5)
    assert await world.token.allowance(world.alice.address, world.carol.address) == 0
    with pytest.raises(TransactionReverted, match="allowance exceeded"):
        await _call(world, world.carol, "transferFrom", *args, 1)


async def test_an_unlimited_allowance_stays_unlimited(world: World) -> None:
    await world.token.approve(world.alice, world.carol.address, UNLIMITED)
    await _call(world, world.carol, "transferFrom", world.alice.address, world.bob.address, UNIT)
    assert await world.token.allowance(world.alice.address, world.carol.address) == UNLIMITED
    assert await world.token.balance_of(world.bob.address) == 1_001 * UNIT


async def test_only_the_owner_hands_on_ownership(world: World) -> None:
    with pytest.raises(TransactionReverted, match="only owner"):
        await _call(world, world.alice, "transfer_ownership", world.alice.address)
    await _call(world, world.owner, "transfer_ownership", world.carol.address)
    await world.token.mint(world.carol, world.carol.address, 1)
    with pytest.raises(TransactionReverted, match="only owner can mint"):
        await world.token.mint(world.owner, world.carol.address, 1)
