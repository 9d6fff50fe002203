"""The service registry through the node API, in process on an embedded chain: listing
from the node's key, discovery by kind, place, price and score, the offer at a
listing's endpoint checked against it, ratings from a session's countersigned receipt,
and the registry's refusals answered with its reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from m2mpay.api.app import create_app
from m2mpay.api.fast import create_asgi
from m2mpay.asgi import AsgiServer
from m2mpay.chain.registry import deploy_registry
from m2mpay.client import OfferView
from m2mpay.crypto import Address
from m2mpay.errors import ApiConflict, ApiInvalidInput, ApiNotFound
from m2mpay.market.registry_index import RegistryIndex
from tests.api.conftest import UNIT, Api, ApiFactory, Chain
from tests.waiting import eventually_async

PARIS = "u09tvw0"  # the Louvre
NEARBY = "u09tvqx"  # a few hundred metres away
LYON = "u05kq3m"

Market = Callable[[int], Awaitable[Api]]


@pytest.fixture
async def market(chain: Chain, make_api: ApiFactory) -> AsyncIterator[Market]:
    """Nodes whose gateways share one index of a registry on the chain's hub (each
    node's would hold the same)."""
    registry, _ = await deploy_registry(chain.ledger, chain.keys[0], chain.hub.address)
    index = RegistryIndex(registry)
    await index.start()

    async def make(number: int) -> Api:
        api = await make_api(number)
        api.gateway.registry = index
        api.gateway.api_url = f"http://node{number}.test"
        return api

    yield make
    await index.stop()


async def _offer(api: Api, price: int) -> OfferView:
    return await api.client.publish_offer(
        kind="energy", unit="Wh", price=price, window=10, batch=2, device="meter/energy"
    )


async def test_services_are_listed_found_by_place_and_price_updated_and_withdrawn(
    market: Market,
) -> None:
    north, south, car = await market(1), await market(2), await market(3)
    offer = await _offer(north, 1_000)
    listed = await north.client.list_service(offer_id=offer.offer_id, location=PARIS)
    assert (listed.kind, listed.unit, listed.price) == ("energy", "Wh", 1_000)
    assert (listed.provider, listed.endpoint) == (north.address, "http://node1.test")
    assert listed.score.ratings == 0
    far = await south.client.list_service(kind="energy", unit="Wh", price=800, location=LYON)
    await south.client.list_service(kind="data", unit="message", price=1, location=NEARBY)

    near = await car.client.find_services(kind="energy", near=NEARBY)
    assert [s.listing_id for s in near] == [listed.listing_id, far.listing_id]
    assert near[0].distance_m is not None
    assert near[0].distance_m < 2_000
    assert (near[1].distance_m or 0) > 380_000  # Lyon
    cheapest = await car.client.find_services(kind="energy")
    assert [s.listing_id for s in cheapest] == [far.listing_id, listed.listing_id]
    assert await car.client.find_services(kind="energy", max_price=900) == [cheapest[0]]
    assert await car.client.find_services(kind="energy", min_score=1) == []

    moved = await north.client.update_service(
        listed.listing_id, kind="energy", unit="Wh", price=700, location=PARIS
    )
    assert moved.price == 700
    assert (await car.client.service(listed.listing_id)).price == 700
    # Another node's key may not change it: the registry's reason is the answer.
    with pytest.raises(ApiConflict, match="not the provider of the listing"):
        await south.client.withdraw_service(listed.listing_id)
    with pytest.raises(ApiConflict, match="not the provider of the listing"):
        await south.client.update_service(listed.listing_id, kind="energy", unit="Wh", price=1)
    await north.client.withdraw_service(listed.listing_id)
    with pytest.raises(ApiNotFound):
        await car.client.service(listed.listing_id)
    with pytest.raises(ApiConflict, match="no such listing"):
        await north.client.withdraw_service(10**6)


async def test_bad_listings_and_queries_are_refused_with_the_field(market: Market) -> None:
    api = await market(1)
    with pytest.raises(ApiInvalidInput) as no_price:
        await api.client.list_service(kind="energy", unit="Wh")
    assert no_price.value.field == "price"
    with pytest.raises(ApiInvalidInput) as bad_kind:
        await api.client.list_service(kind="teleport", unit="Wh", price=1)
    assert bad_kind.value.code == "bad_kind"
    with pytest.raises(ApiNotFound):
        await api.client.list_service(offer_id="0x" + "ab" * 32)
    with pytest.raises(ApiInvalidInput):
        await api.client.list_service(kind="energy", unit="Wh", price=1, location="abc")
    with pytest.raises(ApiInvalidInput):
        await api.client.find_services(near="ilo")  # no i, l or o in a geohash
    with pytest.raises(ApiInvalidInput) as unplaced:
        await api.client.find_services(sort="distance")
    assert unplaced.value.code == "bad_query"


async def test_the_offer_at_a_listings_endpoint_is_checked_against_it(market: Market) -> None:
    seller, buyer = await market(1), await market(2)
    storefront = AsgiServer(
        create_asgi(seller.gateway, create_app(seller.gateway)), name="seller's API"
    )
    url = await storefront.start()
    try:
        offer = await _offer(seller, 1_000)
        honest = await seller.client.list_service(offer_id=offer.offer_id, endpoint=url)
        checked = await buyer.client.check_offer(honest.listing_id)
        assert checked.matches, checked.differences
        assert checked.offer == offer
        assert (checked.seller, checked.peer_endpoint) == (seller.address, seller.node.endpoint)
        # A listing cheaper than the offer it leads to is caught before buying.
        lure = await seller.client.list_service(
            kind="energy", unit="Wh", price=10, endpoint=url, location=PARIS
        )
        caught = await buyer.client.check_offer(lure.listing_id)
        assert not caught.matches
        assert caught.differences == ("price: listed 10, offered 1000",)
        # A listing naming another node's storefront is not that node's offer.
        posing = await buyer.client.list_service(kind="energy", unit="Wh", price=1000, endpoint=url)
        foreign = await buyer.client.check_offer(posing.listing_id)
        assert not foreign.matches
        assert any("the listing's provider" in d for d in foreign.differences)
    finally:
        await storefront.stop()


async def test_a_session_is_rated_once_with_its_receipt_and_scores_follow(
    market: Market,
) -> None:
    charger, car = await market(1), await market(2)
    offer = await _offer(charger, 1_000)
    listed = await charger.client.list_service(offer_id=offer.offer_id, location=PARIS)
    session = await car.client.start_session(
        offer, endpoint=charger.node.endpoint, deposit=UNIT, target_units=20
    )
    with pytest.raises(ApiConflict) as running:
        await car.client.rate(session.session_id, 5)
    assert running.value.code == "no_receipt"
    stopped = await car.sessions.wait_stopped(bytes.fromhex(session.session_id[2:]), timeout=30)
    assert stopped.stop_reason == "target reached"

    rated = await car.client.rate(session.session_id, 4)
    assert (rated.rated, rated.rating, rated.paid) == (charger.address, 4, 20_000)
    assert (rated.score.ratings, rated.score.average) == (1, "4.0000")
    with pytest.raises(ApiConflict, match="party already rated this session"):
        await car.client.rate(session.session_id, 1)
    # The seller rates the buyer too, once.
    back = await charger.client.rate(session.session_id, 5)
    assert back.rated == car.address

    [score] = await car.client.scores(charger.address)
    assert (score.asset, score.value, score.weighted) == (offer.asset, 20_000, 80_000)
    found = await car.client.find_services(kind="energy", min_score=3.5, sort="score")
    assert [s.listing_id for s in found] == [listed.listing_id]
    assert found[0].score == score
    assert await car.client.find_services(kind="energy", min_score=4.5) == []
    with pytest.raises(ApiNotFound):
        await car.client.rate("0x" + "cd" * 32, 5)
    with pytest.raises(ApiInvalidInput):
        await car.client.rate(session.session_id, 6)

    # Once the channel has settled the hub holds no deposits to weigh a rating against.
    second = await car.client.start_session(offer, channel_id=session.channel_id, target_units=4)
    await car.sessions.wait_stopped(bytes.fromhex(second.session_id[2:]), timeout=30)
    await car.client.close_channel(session.channel_id)

    async def settled() -> bool:
        return (await car.client.channel(session.channel_id)).phase == "closed"

    await eventually_async(settled)
    with pytest.raises(ApiConflict, match="channel already settled"):
        await car.client.rate(second.session_id, 3)


async def test_a_listing_names_the_watcher_the_node_feeds_unless_told_another(
    market: Market,
) -> None:
    api = await market(1)
    tower, other = Address("0x" + "77" * 20), Address("0x" + "88" * 20)

    async def fed() -> Address:
        return tower

    unwatched = await api.client.list_service(kind="energy", unit="Wh", price=1)
    assert unwatched.watcher is None
    api.gateway.watcher_address = fed
    watched = await api.client.list_service(kind="energy", unit="Wh", price=1)
    assert watched.watcher == tower
    told = await api.client.list_service(kind="energy", unit="Wh", price=1, watcher=other)
    assert told.watcher == other


async def test_a_node_without_a_registry_says_so(make_api: ApiFactory) -> None:
    api = await make_api(1)
    with pytest.raises(ApiConflict) as refused:
        await api.client.find_services()
    assert refused.value.code == "no_registry"
