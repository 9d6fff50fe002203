"""The service registry through a node: services found by kind, place, price and
score; this node's listings; the check of a listing against its endpoint's offer;
ratings of sessions and the scores they make."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, TypedDict, Unpack

from m2mpay.client.base import ApiBase, address_text, decode_items, given, given_amounts, path_id
from m2mpay.client.codec import Amount, decode
from m2mpay.client.sessions import OfferView
from m2mpay.crypto import Address

__all__ = [
    "ListedServiceView",
    "ListingTerms",
    "OfferCheckView",
    "RatingView",
    "RegistryApi",
    "ScoreView",
]


@dataclass(frozen=True, slots=True)
class ScoreView:
    """A party's reputation in one asset: sum(rating × value) over sum(value)."""

    asset: Address
    weighted: Amount
    value: Amount
    ratings: int
    average: str | None  # 4 decimals, 1 to 5; None before any rating

    @property
    def exact(self) -> Fraction | None:
        return Fraction(self.weighted, self.value) if self.value else None


@dataclass(frozen=True, slots=True)
class ListedServiceView:
    listing_id: int
    provider: Address
    kind: str
    unit: str
    price: Amount  # per unit, in `asset`
    asset: Address
    endpoint: str  # the provider's storefront
    location: str  # a geohash, or empty
    watcher: Address | None
    score: ScoreView  # the provider's, in `asset`
    listed_block: int
    updated_block: int
    distance_m: int | None = None  # from the query's place


@dataclass(frozen=True, slots=True)
class OfferCheckView:
    """The offer at a listing's endpoint, checked against the listing."""

    listing: ListedServiceView
    matches: bool
    offer: OfferView | None  # the matching offer, or the closest
    differences: tuple[str, ...]
    seller: Address | None
    peer_endpoint: str | None


@dataclass(frozen=True, slots=True)
class RatingView:
    session_id: str
    rated: Address
    rating: int
    paid: Amount
    tx_hash: str
    score: ScoreView  # the rated party's, now


class ListingTerms(TypedDict, total=False):
    """What a listing says, given as one of the node's offers (`offer_id`) or explicitly;
    what is left out (or None) the node fills in, `endpoint` with its own API."""

    offer_id: str | bytes | None
    kind: str | None
    unit: str | None
    price: int | None
    asset: Address | str | None
    location: str
    endpoint: str | None
    watcher: Address | str | None


def _terms(terms: ListingTerms) -> dict[str, Any]:
    offer_id = terms.get("offer_id")
    return {
        "location": terms.get("location", ""),
        **given(
            offer_id=None if offer_id is None else path_id(offer_id),
            kind=terms.get("kind"),
            unit=terms.get("unit"),
            endpoint=terms.get("endpoint"),
        ),
        **given_amounts(price=terms.get("price")),
        **given(asset=terms.get("asset"), watcher=terms.get("watcher")),
    }


class RegistryApi(ApiBase):
    async def find_services(
        self,
        *,
        kind: str | None = None,
        near: str | None = None,
        max_price: int | None = None,
        asset: Address | str | None = None,
        min_score: float | None = None,
        sort: Literal["price", "score", "distance"] | None = None,
        limit: int | None = None,
    ) -> list[ListedServiceView]:
        """Listed services: nearest first when `near` (a geohash) is given, else
        cheapest first, unless `sort` says otherwise."""
        found = given(
            kind=kind,
            near=near,
            max_price=None if max_price is None else str(max_price),
            asset=asset,
            min_score=None if min_score is None else str(min_score),
            sort=sort,
            limit=limit,
        )
        params: dict[str, str | int] = {k: v for k, v in found.items() if isinstance(v, str | int)}
        raw = await self._call("GET", "/v1/registry/services", params=params)
        return decode_items(ListedServiceView, raw, "services")

    async def service(self, listing_id: int) -> ListedServiceView:
        return decode(
            ListedServiceView, await self._call("GET", f"/v1/registry/services/{listing_id}")
        )

    async def check_offer(self, listing_id: int) -> OfferCheckView:
        """The offer the listing's endpoint serves, checked against the listing."""
        raw = await self._call("POST", f"/v1/registry/services/{listing_id}/offer")
        return decode(OfferCheckView, raw)

    async def list_service(self, **terms: Unpack[ListingTerms]) -> ListedServiceView:
        """List one of the node's offers (`offer_id`) or explicit terms, from its key;
        `endpoint` defaults to the node's API, its storefront."""
        body = _terms(terms)
        return decode(
            ListedServiceView, await self._call("POST", "/v1/registry/services", body=body)
        )

    async def update_service(
        self, listing_id: int, **terms: Unpack[ListingTerms]
    ) -> ListedServiceView:
        body = _terms(terms)
        raw = await self._call("PUT", f"/v1/registry/services/{listing_id}", body=body)
        return decode(ListedServiceView, raw)

    async def withdraw_service(self, listing_id: int) -> None:
        await self._call("DELETE", f"/v1/registry/services/{listing_id}")

    async def rate(self, session_id: str | bytes, rating: int) -> RatingView:
        """Rate the other party of a stopped, countersigned session of the node's, 1 to 5."""
        body = {"session_id": path_id(session_id), "rating": rating}
        return decode(RatingView, await self._call("POST", "/v1/registry/ratings", body=body))

    async def scores(self, address: Address | str) -> list[ScoreView]:
        """`address`'s score in each asset it was rated in."""
        raw = await self._call("GET", f"/v1/registry/scores/{path_id(address_text(address))}")
        return decode_items(ScoreView, raw, "scores")
