"""Token: ERC-20 transfers, owner-only mint, EIP-2612 permit."""

from __future__ import annotations

import pytest

from m2mpay.chain.artifacts import load_artifact
from m2mpay.crypto import Signature
from m2mpay.crypto.signature import SECP256K1_N
from m2mpay.errors import TransactionReverted
from tests.conftest import UNIT, World


async def test_metadata_and_minted_supply(world: World) -> None:
    assert await world.token.name() == "M2M Token"
    assert await world.token.symbol() == "M2M"
    assert await world.token.decimals() == 18
    assert await world.token.total_supply() == 3_000 * UNIT
    assert await world.token.balance_of(world.alice.address) == 1_000 * UNIT


async def test_only_owner_mints(world: World) -> None:
    with pytest.raises(TransactionReverted, match="only owner can mint"):
        await world.token.mint(world.alice, world.alice.address, 1)


async def test_transfer_moves_balance_and_refuses_overdraft(world: World) -> None:
    await world.token.transfer(world.alice, world.bob.address, 5 * UNIT)
    assert await world.token.balance_of(world.bob.address) == 1_005 * UNIT
    with pytest.raises(TransactionReverted):
        await world.token.transfer(world.alice, world.bob.address, 10_000 * UNIT)
    assert await world.token.balance_of(world.alice.address) == 995 * UNIT


async def test_permit_sets_allowance_and_is_single_use(world: World) -> None:
    spender = world.carol.address
    deadline = await world.ledger.block_timestamp() + 600
    signature = await world.token.sign_permit(world.alice, spender, 7 * UNIT, deadline)
    # Anyone may submit the permit: here the spender does.
    await world.token.permit(
        world.carol, world.alice.address, spender, 7 * UNIT, deadline, signature
    )
    assert await world.token.allowance(world.alice.address, spender) == 7 * UNIT
    assert await world.token.nonce(world.alice.address) == 1
    with pytest.raises(TransactionReverted, match="invalid permit signature"):
        await world.token.permit(
            world.carol, world.alice.address, spender, 7 * UNIT, deadline, signature
        )


async def test_expired_permit_is_refused(world: World) -> None:
    deadline = await world.ledger.block_timestamp() - 1
    signature = await world.token.sign_permit(world.alice, world.carol.address, 1, deadline)
    with pytest.raises(TransactionReverted, match="permit expired"):
        await world.token.permit(
            world.carol, world.alice.address, world.carol.address, 1, deadline, signature
        )


async def test_permit_signed_by_another_key_is_refused(world: World) -> None:
    deadline = await world.ledger.block_timestamp() + 600
    signature = await world.token.sign_permit(world.bob, world.carol.address, 1, deadline)
    with pytest.raises(TransactionReverted, match="invalid permit signature"):
        await world.token.permit(
            world.carol, world.alice.address, world.carol.address, 1, deadline, signature
        )


async def test_malleable_permit_is_refused(world: World) -> None:
    deadline = await world.ledger.block_timestamp() + 600
    good: Signature = await world.token.sign_permit(world.alice, world.carol.address, 1, deadline)
    high_s = (SECP256K1_N - int.from_bytes(good.s, "big")).to_bytes(32, "big")
    data = load_artifact("Token").interface.encode_call(
        "permit", world.alice.address, world.carol.address, 1, deadline, 55 - good.v, good.r, high_s
    )
    with pytest.raises(TransactionReverted, match="malleable signature"):
        await world.ledger.transact(world.carol, world.token.address, data, gas=100_000)
