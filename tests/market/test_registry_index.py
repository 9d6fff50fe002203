"""The node's index of the service registry: the listings and scores its events state,
the same after a restart (rebuilt from the chain), and what a reorganisation takes back
taken out of it (logs retracted by hand on the embedded chain; a real `anvil_reorg`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from m2mpay.chain import AnvilNode, EmbeddedLedger, RpcLedger, deploy_contracts
from m2mpay.chain.devkeys import dev_keys
from m2mpay.chain.ledger import Ledger, Receipt
from m2mpay.chain.registry import Score, ServiceRegistry, ServiceTerms
from m2mpay.crypto import ZERO_ADDRESS, PrivateKey
from m2mpay.market.registry_index import RegistryIndex
from tests.chain.anvil_faults import reorg_from
from tests.conformance.registry_kit import Market, market_of
from tests.conftest import UNIT, World
from tests.waiting import eventually


def _terms(price: int, location: str = "u09tvw0", kind: int = 0) -> ServiceTerms:
    return ServiceTerms(kind, "Wh", price, ZERO_ADDRESS, "http://charger.test", location)


async def _world(ledger: Ledger) -> World:
    owner, alice, bob, carol = ledger.dev_accounts()[:4]
    _, hub, token = await deploy_contracts(
        ledger, owner, mint={k.address: 1_000 * UNIT for k in (alice, bob, carol)}
    )
    return World(ledger, hub, token, owner, alice, bob, carol)


@pytest.fixture
async def market() -> AsyncIterator[Market]:
    async with EmbeddedLedger() as ledger:
        yield await market_of(await _world(ledger))


async def _indexed(index: RegistryIndex, receipt: Receipt) -> None:
    await index.wait_for(receipt.block_number)


def _state(index: RegistryIndex, market: Market) -> tuple[object, ...]:
    world = market.world
    listings = [(s.listing_id, s.provider, s.terms) for s in index.listings()]
    scores = [index.scores(k.address) for k in (world.alice, world.bob, world.carol)]
    return listings, scores


async def test_the_index_holds_what_the_registry_s_events_state(market: Market) -> None:
    world, registry = market.world, market.registry
    first, _ = await registry.list_service(world.alice, _terms(100))
    index = RegistryIndex(registry)
    await index.start()  # it reads what came before, then follows
    try:
        second, _ = await registry.list_service(world.bob, _terms(90, "u05kq3m"))
        third, _ = await registry.list_service(world.carol, _terms(5, kind=2))
        await registry.update_service(world.alice, first, _terms(80))
        await registry.withdraw_service(world.carol, third)
        session = market.session(paid_forward=300)
        await _indexed(
            index,
            await registry.rate(world.alice, session, market.channel, *market.both(session), 4),
        )
        on_chain = {x.listing_id: (x.provider, x.terms) for x in await registry.listings()}
        held = {s.listing_id: (s.provider, s.terms) for s in index.listings()}
        assert held == on_chain
        assert sorted(held) == [first, second]
        updated = index.listing(first)
        assert updated is not None
        assert updated.terms.price == 80
        assert updated.listed_block < updated.updated_block
        assert index.listing(third) is None
        assert index.score(world.bob.address, market.token) == Score(1_200, 300, 1)
        assert index.score(world.bob.address, market.token) == await registry.score(
            world.bob.address, market.token
        )
        [rating] = index.ratings()
        assert (rating.rater, rating.rated, rating.rating) == (
            world.alice.address,
            world.bob.address,
            4,
        )
    finally:
        await index.stop()


async def test_a_restarted_index_rebuilds_the_same_state_from_the_chain(market: Market) -> None:
    world, registry = market.world, market.registry
    index = RegistryIndex(registry)
    await index.start()
    listed, _ = await registry.list_service(world.alice, _terms(100))
    session = market.session(paid_forward=50)
    await _indexed(
        index, await registry.rate(world.bob, session, market.channel, *market.both(session), 2)
    )
    before = _state(index, market)
    await index.stop()

    await registry.update_service(world.alice, listed, _terms(70))  # while it was stopped
    again = RegistryIndex(registry)
    await again.start()
    try:
        assert again.caught_up.is_set()
        listing = again.listing(listed)
        assert listing is not None
        assert listing.terms.price == 70
        assert _state(again, market)[1] == before[1]  # the scores
        assert again.score(world.alice.address, market.token) == Score(100, 50, 1)
    finally:
        await again.stop()


async def test_a_retracted_event_is_taken_back_and_a_repeated_one_changes_nothing(
    market: Market,
) -> None:
    world, registry = market.world, market.registry
    index = RegistryIndex(registry)
    await index.start()
    try:
        listed, _ = await registry.list_service(world.alice, _terms(100))
        update = await registry.update_service(world.alice, listed, _terms(60))
        withdrawal = await registry.withdraw_service(world.alice, listed)
        await _indexed(index, withdrawal)
        assert index.listing(listed) is None
        for entry in withdrawal.logs:  # delivered twice: once is what counts
            index.on_log(entry)
        assert index.listing(listed) is None

        # A reorganisation takes the withdrawal back, then the update.
        for entry in withdrawal.logs:
            index.on_log(replace(entry, removed=True))
        standing = index.listing(listed)
        assert standing is not None
        assert standing.terms.price == 60
        assert index.cursor == withdrawal.block_number - 1
        for entry in update.logs:
            index.on_log(replace(entry, removed=True))
        standing = index.listing(listed)
        assert standing is not None
        assert standing.terms.price == 100
        # The new chain holds them again.
        for entry in (*update.logs, *withdrawal.logs):
            index.on_log(entry)
        assert index.listing(listed) is None
    finally:
        await index.stop()


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    node = AnvilNode()  # its own: a reorganisation would disturb the session's
    node.start()
    yield node
    node.stop()


async def test_a_listing_in_blocks_a_reorganisation_replaced_leaves_the_index(
    anvil: AnvilNode,
) -> None:
    async with (
        RpcLedger(anvil.url, dev_keys=dev_keys()) as ours,
        RpcLedger(anvil.url, dev_keys=dev_keys()) as theirs,
    ):
        world = await _world(ours)
        registry = (await market_of(world)).registry
        index = RegistryIndex(registry)
        await index.start()
        try:
            # Another process lists: nobody sends its transaction again after the reorg.
            seller: PrivateKey = world.carol
            listed, receipt = await ServiceRegistry(theirs, registry.address).list_service(
                seller, _terms(100)
            )
            await _indexed(index, receipt)
            assert index.listing(listed) is not None

            await reorg_from(ours, receipt.block_number)
            await eventually(lambda: index.listing(listed) is None)
            assert index.listings() == []
            assert await registry.listings() == []
        finally:
            await index.stop()
