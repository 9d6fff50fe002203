"""TokenFactory: tokens created with and without a mint owner, a created token that opens
and closes a channel on the existing hub with a permit, the list of every token made,
and bad input refused with the contract's reasons, nothing recorded."""

from __future__ import annotations

from typing import Any

import pytest

from m2mpay.chain import OnchainChannel, TokenContract
from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.token_factory import (
    NO_MINT_OWNER,
    TOKEN_FACTORY_GAS,
    TokenFactory,
    deploy_token_blueprint,
    deploy_token_factory,
)
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import ContractError, TransactionReverted
from tests.conftest import UNIT, World


@pytest.fixture
async def factory(world: World) -> TokenFactory:
    made, _ = await deploy_token_factory(world.ledger, world.owner)
    return made


async def _owner_of(token: TokenContract) -> Address:
    interface = load_artifact("Token").interface
    data = await token.ledger.call(token.address, interface.encode_call("owner"))
    return Address(interface.decode_output("owner", data)[0])


async def _create_raw(world: World, factory: TokenFactory, *args: Any) -> None:
    """`create` as any client may send it, past the binding's own checks."""
    data = load_artifact("TokenFactory").interface.encode_call("create", *args)
    await world.ledger.transact(world.alice, factory.address, data, gas=TOKEN_FACTORY_GAS["create"])


async def test_a_token_without_a_mint_owner_can_never_mint(
    world: World, factory: TokenFactory
) -> None:
    token, receipt = await factory.create(
        world.alice, "IoT-Light", "LIGHT", decimals=6, supply=5_000, holder=world.bob.address
    )
    assert (await token.name(), await token.symbol(), await token.decimals()) == (
        "IoT-Light",
        "LIGHT",
        6,
    )
    assert await token.total_supply() == 5_000
    assert await token.balance_of(world.bob.address) == 5_000
    assert await token.balance_of(world.alice.address) == 0
    # The factory owned the token while it minted and keeps nothing of it.
    assert await _owner_of(token) == NO_MINT_OWNER
    for would_be in (world.alice, world.bob, world.owner):
        with pytest.raises(TransactionReverted, match="only owner can mint"):
            await token.mint(would_be, would_be.address, 1)
    assert await token.total_supply() == 5_000
    [created] = [c for log in receipt.logs if (c := factory.decode(log)) is not None]
    assert (created.token, created.creator, created.name, created.symbol) == (
        token.address,
        world.alice.address,
        "IoT-Light",
        "LIGHT",
    )
    assert (created.decimals, created.supply, created.holder, created.mint_owner) == (
        6,
        5_000,
        world.bob.address,
        None,
    )


async def test_a_token_with_a_mint_owner_mints_for_it_alone(
    world: World, factory: TokenFactory
) -> None:
    token, _ = await factory.create(
        world.alice, "Charger kWh", "KWH", supply=UNIT, mint_owner=world.carol.address
    )
    # No holder given: the supply is the creator's.
    assert await token.balance_of(world.alice.address) == UNIT
    assert await _owner_of(token) == world.carol.address
    await token.mint(world.carol, world.bob.address, 3 * UNIT)
    assert await token.balance_of(world.bob.address) == 3 * UNIT
    assert await token.total_supply() == 4 * UNIT
    with pytest.raises(TransactionReverted, match="only owner can mint"):
        await token.mint(world.alice, world.alice.address, 1)
    [created] = await factory.created(0)
    assert created.mint_owner == world.carol.address


async def test_a_created_token_opens_a_channel_with_a_permit_and_pays_out(
    world: World, factory: TokenFactory
) -> None:
    token, _ = await factory.create(world.owner, "IoT-Light", "LIGHT", supply=100 * UNIT,
                                    holder=world.alice.address)  # fmt: skip
    channel = OnchainChannel(
        world.alice.address, world.bob.address, token.address, 100, 1, deposit_a=10 * UNIT
    )
    deadline = await world.ledger.block_timestamp() + 600
    permit = await token.sign_permit(world.alice, world.hub.address, 10 * UNIT, deadline)
    # One transaction, no approve before it: the permit the hub takes is the token's.
    await world.hub.open(world.alice, channel, permit=permit, permit_deadline=deadline)
    assert await world.token.balance_of(world.hub.address) == 0
    assert await token.balance_of(world.hub.address) == 10 * UNIT
    assert await world.hub.state_hash(channel.id) == await world.hub.expected_state_hash(channel)
    balance_a, balance_b = 7 * UNIT, 3 * UNIT
    await world.hub.cooperative_close(
        world.bob,
        channel,
        balance_a,
        balance_b,
        world.hub.sign_settlement(world.alice, channel.id, balance_a, balance_b),
        world.hub.sign_settlement(world.bob, channel.id, balance_a, balance_b),
    )
    assert await token.balance_of(world.bob.address) == 3 * UNIT
    assert await token.balance_of(world.alice.address) == 97 * UNIT
    assert await token.balance_of(world.hub.address) == 0


async def test_the_factory_lists_every_token_it_made_in_order(
    world: World, factory: TokenFactory
) -> None:
    assert await factory.count() == 0
    assert await factory.tokens() == []
    made = [
        (await factory.create(world.alice, f"Token {n}", f"T{n}", supply=n))[0].address
        for n in range(3)
    ]
    assert await factory.count() == 3
    assert await factory.tokens() == made
    assert await factory.tokens(1, 1) == made[1:2]
    assert await factory.tokens(2, 10) == made[2:]
    assert await factory.token_at(3) == NO_MINT_OWNER  # past the end: the zero address
    assert [c.token for c in await factory.created(0)] == made
    assert [c.symbol for c in await factory.created(0)] == ["T0", "T1", "T2"]
    assert all([await factory.is_token(address) for address in made])
    assert not await factory.is_token(world.token.address)  # deployed, not made here


async def test_bad_input_is_refused_with_reasons_and_nothing_is_made(
    world: World, factory: TokenFactory
) -> None:
    alice = world.alice.address
    refusals: list[tuple[tuple[Any, ...], str]] = [
        (("", "LIGHT", 18, 1, alice, alice), "empty name"),
        (("IoT-Light", "", 18, 1, alice, alice), "empty symbol"),
        (("IoT-Light", "LIGHT", 78, 1, alice, alice), "decimals above 77"),
        (("IoT-Light", "LIGHT", 255, 1, alice, alice), "decimals above 77"),
        (("IoT-Light", "LIGHT", 18, 1, NO_MINT_OWNER, alice), "supply to zero holder"),
    ]
    for args, reason in refusals:
        with pytest.raises(TransactionReverted, match=reason):
            await _create_raw(world, factory, *args)
    # A name longer than the contract's String[64] is refused by the ABI decoder.
    with pytest.raises(TransactionReverted):
        await _create_raw(world, factory, "x" * 65, "LIGHT", 18, 1, alice, alice)
    assert await factory.count() == 0
    assert await factory.created(0) == []
    # At the edges: 77 decimals, and no supply for no holder, are accepted.
    await _create_raw(world, factory, "Wide", "W", 77, 2**256 - 1, alice, NO_MINT_OWNER)
    await _create_raw(world, factory, "Empty", "E", 0, 0, NO_MINT_OWNER, NO_MINT_OWNER)
    wide, empty = [TokenContract(world.ledger, a) for a in await factory.tokens()]
    assert await wide.balance_of(alice) == 2**256 - 1
    assert await empty.total_supply() == 0


async def test_the_binding_refuses_what_the_abi_cannot_carry(
    world: World, factory: TokenFactory
) -> None:
    with pytest.raises(ContractError, match="name is at most 64 bytes"):
        await factory.create(world.alice, "é" * 33, "LIGHT")  # 66 bytes of UTF-8
    with pytest.raises(ContractError, match="symbol is at most 32 bytes"):
        await factory.create(world.alice, "IoT-Light", "L" * 33)
    with pytest.raises(ContractError, match="decimals"):
        await factory.create(world.alice, "IoT-Light", "LIGHT", decimals=256)
    with pytest.raises(ContractError, match="supply"):
        await factory.create(world.alice, "IoT-Light", "LIGHT", supply=-1)
    assert await factory.count() == 0


async def test_the_blueprint_cannot_be_called_and_must_be_the_token_s(world: World) -> None:
    blueprint, _ = await deploy_token_blueprint(world.ledger, world.owner)
    # ERC-5202: a blueprint starts with INVALID, so calling it runs nothing.
    as_token = TokenContract(world.ledger, blueprint)
    with pytest.raises(TransactionReverted):
        await as_token.transfer(world.alice, world.bob.address, 1)
    reused, _ = await deploy_token_factory(world.ledger, world.owner, blueprint)
    assert await reused.blueprint() == blueprint
    # The binding builds no factory over other code, nor over none.
    for wrong in (world.token.address, PrivateKey.generate().address):
        with pytest.raises(ContractError, match="not the Token contract's blueprint"):
            await deploy_token_factory(world.ledger, world.owner, wrong)
    # The contract itself refuses an address without code (the reason is the
    # constructor's, which a deployment's receipt does not carry back).
    artifact = load_artifact("TokenFactory")
    nobody = PrivateKey.generate().address
    init_code = artifact.bytecode + artifact.interface.encode_constructor(nobody)
    with pytest.raises(TransactionReverted):
        await world.ledger.deploy(world.owner, init_code, gas=TOKEN_FACTORY_GAS["deploy"])
