"""The service registry: discovery over the node's index of it, this node's listings,
the check of a listing against the offer its endpoint serves, ratings and scores.

Listings, updates, withdrawals and ratings are transactions from the node's key; the
registry refuses what that key may not do (another's listing, a second rating of a
session, a receipt that does not prove the session) and its reason is the answer
(409 `transaction_reverted`). What a transaction logged is in the index before the
answer, so a listing shows at once.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError, provided
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import ADDRESS, Amount
from m2mpay.api.models import Address as AddressText
from m2mpay.api.models_registry import (
    GEOHASH,
    ListedServiceView,
    OfferCheckView,
    RatingCreate,
    RatingView,
    ScoreList,
    ScoreView,
    ServiceCreate,
    ServiceList,
)
from m2mpay.api.routes_storefront import read_storefront
from m2mpay.api.views import hex32, offer_view, parse_hex32
from m2mpay.chain.registry import Score, ServiceTerms
from m2mpay.crypto import ZERO_ADDRESS, Address
from m2mpay.errors import ContractError, M2MPayError
from m2mpay.market.discovery import (
    ServiceQuery,
    find_services,
    kind_name,
    kind_number,
    offer_differences,
)
from m2mpay.market.rating import rate_session, rating_proof
from m2mpay.market.registry_index import ListedService, RegistryIndex
from m2mpay.stream import Offer

__all__ = ["registry_routes", "score_view", "service_view"]

ListingPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="The registry's listing id.")]


def score_view(asset: Address, score: Score) -> ScoreView:
    average = score.average
    return ScoreView(
        asset=asset.checksum,
        weighted=str(score.weighted),
        value=str(score.value),
        ratings=score.ratings,
        average=None if average is None else f"{float(average):.4f}",
    )


def service_view(
    index: RegistryIndex, service: ListedService, distance: float | None = None
) -> ListedServiceView:
    terms = service.terms
    return ListedServiceView(
        listing_id=service.listing_id,
        provider=service.provider.checksum,
        kind=kind_name(terms.kind),
        unit=terms.unit,
        price=str(terms.price),
        asset=terms.asset.checksum,
        endpoint=terms.endpoint,
        location=terms.location,
        watcher=None if terms.watcher == ZERO_ADDRESS else terms.watcher.checksum,
        score=score_view(terms.asset, index.score(service.provider, terms.asset)),
        distance_m=None if distance is None else round(distance),
        listed_block=service.listed_block,
        updated_block=service.updated_block,
    )


def _index(gw: Gateway) -> RegistryIndex:
    return provided(gw.registry, "no_registry", "this node's deployment has no service registry")


def _listed(index: RegistryIndex, listing_id: int) -> ListedService:
    service = index.listing(listing_id)
    if service is None:
        raise ApiError(404, "unknown_listing", f"no listing {listing_id} stands", "listing_id")
    return service


async def _terms(gw: Gateway, body: ServiceCreate) -> ServiceTerms:
    """The terms a listing request states: an offer of ours, or its own."""
    own = {"kind": body.kind, "unit": body.unit, "price": body.price, "asset": body.asset}
    if body.offer_id is not None:
        given = [name for name, value in own.items() if value is not None]
        if given:
            raise ApiError(422, "invalid_input", "give offer_id or the terms, not both", given[0])
        offer_id = parse_hex32(body.offer_id, "offer_id")
        offers = [o for o in gw.sessions.offers() if o.offer_id == offer_id]
        if not offers:
            raise ApiError(404, "unknown_offer", f"no offer {body.offer_id} here", "offer_id")
        offer: Offer = offers[0]
        kind, unit, price, asset = (
            kind_number(offer.kind.value),
            offer.unit,
            offer.price,
            offer.asset,
        )
    else:
        if body.kind is None or body.unit is None or body.price is None:
            name = next(name for name in ("kind", "unit", "price") if own[name] is None)
            raise ApiError(422, "invalid_input", f"give {name} (or offer_id)", name)
        kind, unit, price = kind_number(body.kind), body.unit, int(body.price)
        asset = Address(body.asset) if body.asset else gw.deployment.token
    endpoint = body.endpoint or gw.api_url
    if endpoint is None:
        raise ApiError(422, "invalid_input", "give the storefront's URL", "endpoint")
    if body.watcher is not None:
        watcher = Address(body.watcher)
    elif gw.watcher_address is not None:
        watcher = await gw.watcher_address()  # the one this node feeds, if it answers
    else:
        watcher = ZERO_ADDRESS
    try:
        return ServiceTerms(kind, unit, price, asset, endpoint, body.location, watcher)
    except ContractError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None


def registry_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "registry")

    @routes.read(
        "/v1/registry/services",
        ServiceList,
        summary="Find services listed in the registry",
        description="Filtered by kind, asset, price and score; nearest first when `near` "
        "(a geohash) is given, else cheapest first, unless `sort` says otherwise.",
    )
    async def find(
        kind: Annotated[str | None, Query(max_length=20)] = None,
        near: Annotated[str | None, Query(pattern=GEOHASH)] = None,
        max_price: Amount | None = None,
        asset: AddressText | None = None,
        min_score: Annotated[float | None, Query(ge=1, le=5)] = None,
        sort: Literal["price", "score", "distance"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> ServiceList:
        index = _index(gw)
        query = ServiceQuery(
            kind=None if kind is None else kind_number(kind),
            near=near,
            max_price=None if max_price is None else int(max_price),
            asset=None if asset is None else Address(asset),
            min_score=None if min_score is None else Fraction(min_score).limit_denominator(1000),
            sort=sort,
            limit=limit,
        )
        found = find_services(index, query)
        return ServiceList(
            services=[service_view(index, f.service, f.distance_m) for f in found],
            cursor=index.cursor,
        )

    @routes.read("/v1/registry/services/{listing_id}", ListedServiceView, summary="One listing")
    async def show(listing_id: ListingPath) -> ListedServiceView:
        index = _index(gw)
        return service_view(index, _listed(index, listing_id))

    @routes.write(
        "/v1/registry/services/{listing_id}/offer",
        OfferCheckView,
        summary="Fetch the offer from the listing's endpoint and check it against the listing",
        description="Reads the storefront at the listing's endpoint (its /v1/info and "
        "/v1/offers) and finds an offer of the listing's provider with its kind, unit, "
        "price and asset; otherwise the closest, with what differs.",
    )
    async def check_offer(listing_id: ListingPath) -> OfferCheckView:
        index = _index(gw)
        service = _listed(index, listing_id)
        info, offers, _ = await read_storefront(service.terms.endpoint, "listing_id")
        try:
            seller = Address(info.address)
        except M2MPayError:
            raise ApiError(409, "bad_storefront", "the endpoint's address is not one") from None
        judged = sorted(
            ((offer_differences(service, o, seller), o) for o in offers),
            key=lambda pair: len(pair[0]),
        )
        differences, best = judged[0] if judged else (["the storefront has no offers"], None)
        return OfferCheckView(
            listing=service_view(index, service),
            matches=not differences,
            offer=None if best is None else offer_view(best),
            differences=differences,
            seller=seller.checksum,
            peer_endpoint=info.peer_endpoint,
        )

    @routes.write(
        "/v1/registry/services",
        ListedServiceView,
        status_code=201,
        summary="List a service in the registry, from this node's key",
    )
    async def list_service(body: ServiceCreate) -> ListedServiceView:
        index = _index(gw)
        terms = await _terms(gw, body)
        listing_id, receipt = await index.registry.list_service(gw.node.key, terms)
        index.add_mined(receipt)
        return service_view(index, _listed(index, listing_id))

    @routes.write(
        "/v1/registry/services/{listing_id}",
        ListedServiceView,
        method="PUT",
        summary="Replace the terms of one of this node's listings",
    )
    async def update(listing_id: ListingPath, body: ServiceCreate) -> ListedServiceView:
        index = _index(gw)
        terms = await _terms(gw, body)
        index.add_mined(await index.registry.update_service(gw.node.key, listing_id, terms))
        return service_view(index, _listed(index, listing_id))

    @routes.write(
        "/v1/registry/services/{listing_id}",
        None,
        method="DELETE",
        status_code=204,
        summary="Withdraw one of this node's listings",
    )
    async def withdraw(listing_id: ListingPath) -> Response:
        index = _index(gw)
        index.add_mined(await index.registry.withdraw_service(gw.node.key, listing_id))
        return Response(status_code=204)

    @routes.write(
        "/v1/registry/ratings",
        RatingView,
        status_code=201,
        summary="Rate the other party of a session of this node's, with its receipt",
        description="The session's receipt both parties signed and its channel's state "
        "go to the registry, which weighs the rating by the value paid; one rating per "
        "party per session.",
    )
    async def rate(body: RatingCreate) -> RatingView:
        index = _index(gw)
        info = gw.sessions.session(parse_hex32(body.session_id, "session_id"))
        states = {s.channel_id: s for s in gw.node.channel_states()}
        channel = states.get(info.channel_id)
        if channel is None:
            raise ApiError(409, "unknown_channel", "the session's channel is not this node's")
        proof = rating_proof(info, channel)
        receipt = await rate_session(index.registry, gw.node.key, proof, body.rating)
        index.add_mined(receipt)
        asset = channel.terms.asset
        return RatingView(
            session_id=hex32(info.session_id),
            rated=proof.rated.checksum,
            rating=body.rating,
            paid=str(proof.paid),
            tx_hash=hex32(receipt.tx_hash),
            score=score_view(asset, index.score(proof.rated, asset)),
        )

    @routes.read(
        "/v1/registry/scores/{address}",
        ScoreList,
        summary="A party's reputation, per asset",
    )
    async def scores(
        address: Annotated[str, Path(pattern=ADDRESS)],
    ) -> ScoreList:
        index = _index(gw)
        party = Address(address)
        found = index.scores(party)
        return ScoreList(
            address=party.checksum,
            scores=[score_view(asset, found[asset]) for asset in sorted(found)],
        )

    return routes.router
