"""Another node's storefront, read by this node: its address, wire endpoint, offers and
feeds.

A browser on this node's web app may reach only this node (the app's policy allows no
other origin), so buying from a seller starts here: the node asks the seller's public
`/v1/info`, `/v1/offers` and `/v1/feeds` and answers what it found, with whether the
seller is on our chain. The registry's offer check reads a listing's endpoint the same
way. It asks a URL the caller names, so it needs the token always (public reads or not):
an open one would let anyone make the node ask any address it can reach."""

from __future__ import annotations

from typing import Final

import httpx
from fastapi import APIRouter
from pydantic import ValidationError

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import InfoView, OfferList
from m2mpay.api.models_access import FeedList, FeedView
from m2mpay.api.models_registry import StorefrontAsk, StorefrontView
from m2mpay.api.routes_grants import ask_seller
from m2mpay.api.views import offer_from_view, offer_view
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError
from m2mpay.stream import Offer

__all__ = ["read_storefront", "storefront_routes"]

_TIMEOUT_S: Final = 10.0


async def read_storefront(
    endpoint: str, field: str, *, feeds: bool = False
) -> tuple[InfoView, list[Offer], list[FeedView]]:
    """Who serves at `endpoint`, its offers (those that parse) and, asked, its feeds;
    refusals name `field`."""
    if not endpoint.startswith(("http://", "https://")):
        raise ApiError(409, "bad_endpoint", f"the endpoint {endpoint[:80]!r} is no URL", field)
    missing = ("unknown_storefront", field)
    async with httpx.AsyncClient(timeout=_TIMEOUT_S) as http:
        raw_info = await ask_seller(http, endpoint, "/v1/info", "node info", missing=missing)
        raw_offers = await ask_seller(http, endpoint, "/v1/offers", "storefront", missing=missing)
        raw_feeds = (
            await ask_seller(http, endpoint, "/v1/feeds", "feeds", missing=missing)
            if feeds
            else {"feeds": []}
        )
    try:
        info = InfoView.model_validate(raw_info)
        views = OfferList.model_validate(raw_offers).offers
        sold = FeedList.model_validate(raw_feeds).feeds
    except ValidationError as exc:
        raise ApiError(
            409, "bad_storefront", f"the endpoint's answer: {exc.errors()[0]['msg']}", field
        ) from None
    offers = []
    for view in views:
        try:
            offers.append(offer_from_view(view))
        except (M2MPayError, ValueError):
            continue  # one the seller got wrong; the others may still be bought
    return info, offers, sold


def storefront_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "offers")

    # A write (the token always, public reads or not): it makes the node ask a URL.
    @routes.write(
        "/v1/storefront",
        StorefrontView,
        summary="Read another node's storefront through this node",
        description="Asks the seller's public /v1/info, /v1/offers and /v1/feeds; answers "
        "its address, wire endpoint, offers and feeds, and whether it is on this node's "
        "chain. An offer from it is bought with POST /v1/sessions (`endpoint`: its "
        "peer_endpoint), a feed with POST /v1/grants.",
    )
    async def storefront(body: StorefrontAsk) -> StorefrontView:
        info, offers, feeds = await read_storefront(body.seller, "seller", feeds=True)
        try:
            seller = Address(info.address)
        except M2MPayError:
            raise ApiError(
                409, "bad_storefront", "the seller's address is not one", "seller"
            ) from None
        return StorefrontView(
            seller=seller.checksum,
            peer_endpoint=info.peer_endpoint,
            same_chain=info.genesis_hash == "0x" + gw.ledger.genesis_hash.hex(),
            offers=[offer_view(o) for o in offers if o.seller == seller],
            feeds=feeds,
        )

    return routes.router
