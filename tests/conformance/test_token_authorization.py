"""Token: EIP-3009 transfers by signed authorization (x402's exact scheme pays with one),
on every ledger: who may submit, the validity window, single use, cancelling, and the
signatures refused."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from m2mpay.chain.artifacts import load_artifact
from m2mpay.crypto import PrivateKey, TransferAuthorization
from m2mpay.crypto.eip712 import cancel_authorization_digest
from m2mpay.crypto.signature import SECP256K1_N
from m2mpay.errors import TransactionReverted
from tests.conftest import UNIT, World


async def _authorization(
    world: World, payer: PrivateKey, *, value: int = 3 * UNIT, kind: str = "transfer", **times: int
) -> TransferAuthorization:
    now = await world.ledger.block_timestamp()
    return TransferAuthorization(
        payer.address,
        world.carol.address,
        value,
        times.get("valid_after", 0),
        times.get("valid_before", now + 600),
        secrets.token_bytes(32),
        kind,
    )


async def test_anyone_submits_a_signed_transfer_once(world: World) -> None:
    token = world.token
    authorization = await _authorization(world, world.alice)
    signature = await token.sign_authorization(world.alice, authorization)
    before = await token.balance_of(world.carol.address)
    # Bob pays the gas; Alice, who signed, pays the tokens.
    await token.transfer_with_authorization(world.bob, authorization, signature)
    assert await token.balance_of(world.carol.address) == before + 3 * UNIT
    assert await token.balance_of(world.alice.address) == 997 * UNIT
    assert await token.authorization_used(world.alice.address, authorization.nonce)
    with pytest.raises(TransactionReverted, match="authorization used"):
        await token.transfer_with_authorization(world.bob, authorization, signature)
    assert await token.balance_of(world.carol.address) == before + 3 * UNIT


async def test_outside_its_window_an_authorization_moves_nothing(world: World) -> None:
    now = await world.ledger.block_timestamp()
    early = await _authorization(world, world.alice, valid_after=now + 600, valid_before=now + 900)
    late = await _authorization(world, world.alice, valid_before=now - 1)
    for authorization, reason in ((early, "not yet valid"), (late, "authorization expired")):
        signature = await world.token.sign_authorization(world.alice, authorization)
        with pytest.raises(TransactionReverted, match=reason):
            await world.token.transfer_with_authorization(world.bob, authorization, signature)
    assert await world.token.balance_of(world.alice.address) == 1_000 * UNIT


async def test_a_signature_by_another_key_or_over_other_terms_is_refused(world: World) -> None:
    authorization = await _authorization(world, world.alice)
    by_bob = world.bob.sign_digest(authorization.digest(await world.token.domain()))
    with pytest.raises(TransactionReverted, match="invalid authorization signature"):
        await world.token.transfer_with_authorization(world.bob, authorization, by_bob)
    signature = await world.token.sign_authorization(world.alice, authorization)
    more = TransferAuthorization(
        authorization.sender,
        authorization.receiver,
        authorization.value + 1,
        authorization.valid_after,
        authorization.valid_before,
        authorization.nonce,
    )
    with pytest.raises(TransactionReverted, match="invalid authorization signature"):
        await world.token.transfer_with_authorization(world.bob, more, signature)
    assert not await world.token.authorization_used(world.alice.address, authorization.nonce)


async def test_a_receive_authorization_is_submitted_by_its_payee_only(world: World) -> None:
    authorization = await _authorization(world, world.alice, kind="receive")
    signature = await world.token.sign_authorization(world.alice, authorization)
    with pytest.raises(TransactionReverted, match="caller must be the payee"):
        await world.token.transfer_with_authorization(world.bob, authorization, signature)
    await world.token.transfer_with_authorization(world.carol, authorization, signature)
    assert await world.token.balance_of(world.alice.address) == 997 * UNIT
    # Signed to be received, it cannot be pushed as a transfer either.
    other = await _authorization(world, world.alice, kind="receive")
    signature = await world.token.sign_authorization(world.alice, other)
    pushed = dataclasses.replace(other, kind="transfer")
    with pytest.raises(TransactionReverted, match="invalid authorization signature"):
        await world.token.transfer_with_authorization(world.bob, pushed, signature)


_FIELDS = ("sender", "receiver", "value", "valid_after", "valid_before", "nonce")


async def test_a_cancelled_authorization_cannot_be_used(world: World) -> None:
    authorization = await _authorization(world, world.alice)
    signature = await world.token.sign_authorization(world.alice, authorization)
    # Bob cannot cancel Alice's: a cancellation signed by Bob for her nonce is refused.
    by_bob = world.bob.sign_digest(
        cancel_authorization_digest(
            await world.token.domain(), world.alice.address, authorization.nonce
        )
    )
    data = load_artifact("Token").interface.encode_call(
        "cancelAuthorization",
        world.alice.address,
        authorization.nonce,
        by_bob.v,
        by_bob.r,
        by_bob.s,
    )
    with pytest.raises(TransactionReverted, match="invalid cancel signature"):
        await world.ledger.transact(world.bob, world.token.address, data, gas=70_000)
    assert not await world.token.authorization_used(world.alice.address, authorization.nonce)
    await world.token.cancel_authorization(world.bob, world.alice, authorization.nonce)
    with pytest.raises(TransactionReverted, match="authorization used"):
        await world.token.transfer_with_authorization(world.bob, authorization, signature)
    with pytest.raises(TransactionReverted, match="authorization used"):
        await world.token.cancel_authorization(world.bob, world.alice, authorization.nonce)
    assert await world.token.balance_of(world.alice.address) == 1_000 * UNIT


async def test_a_malleable_authorization_signature_is_refused(world: World) -> None:
    authorization = await _authorization(world, world.alice)
    good = await world.token.sign_authorization(world.alice, authorization)
    high_s = (SECP256K1_N - int.from_bytes(good.s, "big")).to_bytes(32, "big")
    data = load_artifact("Token").interface.encode_call(
        "transferWithAuthorization",
        *(getattr(authorization, f) for f in _FIELDS),
        55 - good.v,
        good.r,
        high_s,
    )
    with pytest.raises(TransactionReverted, match="malleable signature"):
        await world.ledger.transact(world.bob, world.token.address, data, gas=100_000)
