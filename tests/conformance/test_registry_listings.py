"""ServiceRegistry listings: list, update, withdraw, by kind, and only by the lister's key."""

from __future__ import annotations

import pytest

from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.registry import Listing, ServiceKind, ServiceTerms
from m2mpay.crypto import ZERO_ADDRESS
from m2mpay.errors import ContractError, TransactionReverted
from tests.conformance.registry_kit import Market, market_of
from tests.conftest import World


@pytest.fixture
async def market(world: World) -> Market:
    return await market_of(world)


def charger(price: int = 25, location: str = "u33dc0") -> ServiceTerms:
    return ServiceTerms(
        ServiceKind.ENERGY,
        "Wh",
        price,
        ZERO_ADDRESS,
        "https://charger.example/v1 ws://charger.example/peer",
        location,
    )


async def test_list_update_withdraw_and_their_events(market: Market) -> None:
    world, registry = market.world, market.registry
    terms = charger()
    listing_id, _ = await registry.list_service(world.alice, terms)
    assert listing_id == 1
    listed = await registry.listing(listing_id)
    assert listed is not None
    assert (listed.provider, listed.terms) == (world.alice.address, terms)

    moved = ServiceTerms(
        ServiceKind.ENERGY,
        "kWh",
        30_000,
        world.token.address,
        "https://c2.example",
        "u33d",
        world.carol.address,
    )
    await registry.update_service(world.alice, listing_id, moved)
    updated = await registry.listing(listing_id)
    assert updated is not None
    assert updated.terms == moved

    assert await registry.provider(listing_id) == world.alice.address
    await registry.withdraw_service(world.alice, listing_id)
    assert await registry.listing(listing_id) is None
    assert await registry.provider(listing_id) is None
    with pytest.raises(TransactionReverted, match="no such listing"):
        await registry.update_service(world.alice, listing_id, terms)
    # A withdrawn id is never given again, so an index keyed by id stays right.
    assert (await registry.list_service(world.alice, terms))[0] == 2

    events = await registry.events()
    assert [e.name for e in events] == [
        "ServiceListed",
        "ServiceUpdated",
        "ServiceWithdrawn",
        "ServiceListed",
    ]
    assert events[1].args["listing_id"] == 1
    assert events[1].args["provider"] == world.alice.address
    assert (events[1].args["unit"], events[1].args["price"]) == ("kWh", 30_000)
    assert events[1].args["asset"] == world.token.address
    assert events[1].args["watcher"] == world.carol.address
    assert (events[1].args["endpoint"], events[1].args["location"]) == (
        "https://c2.example",
        "u33d",
    )
    assert events[2].args == {"listing_id": 1, "provider": world.alice.address}


async def test_another_key_neither_updates_nor_withdraws_a_listing(market: Market) -> None:
    world, registry = market.world, market.registry
    listing_id, _ = await registry.list_service(world.alice, charger())
    with pytest.raises(TransactionReverted, match="not the provider of the listing"):
        await registry.update_service(world.bob, listing_id, charger(price=1))
    with pytest.raises(TransactionReverted, match="not the provider of the listing"):
        await registry.withdraw_service(world.bob, listing_id)
    listed = await registry.listing(listing_id)
    assert listed is not None
    assert listed.terms == charger()
    assert [e.name for e in await registry.events()] == ["ServiceListed"]


async def test_listings_by_kind_leave_out_the_withdrawn(market: Market) -> None:
    world, registry = market.world, market.registry
    first, _ = await registry.list_service(world.alice, charger(price=20))
    second, _ = await registry.list_service(world.bob, charger(price=30))
    feed = ServiceTerms(ServiceKind.DATA, "msg", 5, ZERO_ADDRESS, "https://feed.example")
    await registry.list_service(world.bob, feed)
    assert [x.listing_id for x in await registry.listings(ServiceKind.ENERGY)] == [first, second]
    assert [x.terms for x in await registry.listings(ServiceKind.DATA)] == [feed]
    await registry.withdraw_service(world.alice, first)
    assert [x.listing_id for x in await registry.listings(ServiceKind.ENERGY)] == [second]
    assert len(await registry.listings()) == 2


@pytest.mark.parametrize(
    ("kind", "unit", "endpoint", "location", "reason"),
    [
        (16, "Wh", "https://x", "u33d", "unknown kind"),
        (0, "", "https://x", "u33d", "empty unit"),
        (0, "Wh", "", "u33d", "empty endpoint"),
        (0, "Wh", "https://x", "u33a", "location is not a geohash"),  # no a in geohashes
        (0, "Wh", "https://x", "U33D", "location is not a geohash"),
    ],
)
async def test_the_contract_refuses_bad_terms_sent_around_the_binding(
    market: Market, kind: int, unit: str, endpoint: str, location: str, reason: str
) -> None:
    world = market.world
    data = load_artifact("ServiceRegistry").interface.encode_call(
        "list_service", kind, unit, 1, ZERO_ADDRESS, endpoint, location, ZERO_ADDRESS
    )
    with pytest.raises(TransactionReverted, match=reason):
        await world.ledger.transact(world.alice, market.registry.address, data, gas=400_000)
    assert await market.registry.listing_count() == 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"kind": 16}, "kind"),
        ({"unit": "x" * 17}, "unit"),
        ({"unit": ""}, "unit"),
        ({"endpoint": "h" * 257}, "endpoint"),
        ({"location": "u33dc0u33dc0u"}, "location"),
        ({"location": "ai"}, "location"),
        ({"price": -1}, "price"),
    ],
)
def test_the_binding_refuses_terms_the_contract_would(
    changes: dict[str, object], reason: str
) -> None:
    fields: dict[str, object] = {
        "kind": 0,
        "unit": "Wh",
        "price": 1,
        "asset": ZERO_ADDRESS,
        "endpoint": "https://x",
    }
    fields.update(changes)
    with pytest.raises(ContractError, match=reason):
        ServiceTerms(**fields)  # type: ignore[arg-type]


async def test_the_longest_terms_list_within_the_gas_limits(market: Market) -> None:
    world, registry = market.world, market.registry
    longest = ServiceTerms(15, "u" * 16, 2**256 - 1, world.token.address, "e" * 256, "z" * 12)
    listing_id, _ = await registry.list_service(world.alice, longest)
    await registry.update_service(world.alice, listing_id, longest)
    assert await registry.listing(listing_id) == Listing(listing_id, world.alice.address, longest)
