"""Finding services in the registry's index, and checking a seller's offer against the
listing that led to it.

Discovery filters by kind, asset, price and score and sorts by price, by score or by
distance from a place (nearest first when a place is given). A listing is only what its
provider says on chain; the offer its storefront serves is what a session is bought
under, so a buyer checks the two agree (`offer_differences`) before buying.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from m2mpay.chain.registry import MAX_KIND, Score
from m2mpay.chain.registry import ServiceKind as ListedKind
from m2mpay.crypto import Address
from m2mpay.errors import MarketError
from m2mpay.market.geohash import distance_m, is_geohash
from m2mpay.market.registry_index import ListedService, RegistryIndex
from m2mpay.stream import Offer

__all__ = [
    "Found",
    "ServiceQuery",
    "Sort",
    "find_services",
    "kind_name",
    "kind_number",
    "offer_differences",
]

Sort = Literal["price", "score", "distance"]


def kind_name(kind: int) -> str:
    """A listed kind as people (and offers) name it: `energy`, …, or `kind-9`."""
    try:
        return ListedKind(kind).name.lower()
    except ValueError:
        return f"kind-{kind}"


def kind_number(text: str) -> int:
    """A kind by name (`energy`, `kind-9`) or number (`9`)."""
    name = text.strip().lower()
    number = name.removeprefix("kind-")
    if number.isascii() and number.isdigit() and int(number) <= MAX_KIND:
        return int(number)
    try:
        return int(ListedKind[name.upper()])
    except KeyError:
        names = ", ".join(k.name.lower() for k in ListedKind)
        raise MarketError(
            "bad_kind", f"{text[:40]!r} is no kind: {names}, or 0 to {MAX_KIND}"
        ) from None


@dataclass(frozen=True, slots=True)
class ServiceQuery:
    kind: int | None = None
    near: str | None = None  # a geohash
    max_price: int | None = None
    asset: Address | None = None
    min_score: Fraction | None = None  # the value-weighted average, 1 to 5
    sort: Sort | None = None  # default: distance when `near` is given, else price
    limit: int = 100

    def __post_init__(self) -> None:
        if self.near is not None and not is_geohash(self.near):
            raise MarketError("bad_geohash", f"near: {self.near[:40]!r} is not a geohash")
        if self.sort == "distance" and self.near is None:
            raise MarketError("bad_query", "sorting by distance needs a place (near)")


@dataclass(frozen=True, slots=True)
class Found:
    service: ListedService
    score: Score  # the provider's, in the listing's asset
    distance_m: float | None  # from the query's place; None without one or without a place


def find_services(index: RegistryIndex, query: ServiceQuery) -> list[Found]:
    """The listings that match, in the order asked for; ties broken by listing id."""
    found: list[Found] = []
    for service in index.listings():
        terms = service.terms
        if query.kind is not None and terms.kind != query.kind:
            continue
        if query.asset is not None and terms.asset != query.asset:
            continue
        if query.max_price is not None and terms.price > query.max_price:
            continue
        score = index.score(service.provider, terms.asset)
        if query.min_score is not None and (
            score.average is None or score.average < query.min_score
        ):
            continue
        distance = None
        if query.near is not None and terms.location:
            distance = distance_m(query.near, terms.location)
        found.append(Found(service, score, distance))
    sort = query.sort or ("distance" if query.near is not None else "price")
    if sort == "price":
        found.sort(key=lambda f: (f.service.terms.price, f.service.listing_id))
    elif sort == "score":
        # Best first; unrated after every rated one.
        found.sort(key=lambda f: (-(f.score.average or 0), f.service.listing_id))
    else:
        unplaced = float("inf")  # a service with no place comes after every placed one
        found.sort(key=lambda f: (f.distance_m or unplaced, f.service.listing_id))
    return found[: query.limit]


def offer_differences(service: ListedService, offer: Offer, seller: Address) -> list[str]:
    """What the offer (as the node at the listing's endpoint serves it, that node being
    `seller`) says otherwise than the listing; empty when they agree."""
    terms = service.terms
    differences = []
    if seller != service.provider:
        differences.append(
            f"the node at the endpoint is {seller.checksum}, the listing's provider "
            f"{service.provider.checksum}"
        )
    if offer.seller != service.provider:
        differences.append(f"the offer's seller is {offer.seller.checksum}, not the provider")
    if offer.kind.value != kind_name(terms.kind):
        differences.append(f"kind: listed {kind_name(terms.kind)}, offered {offer.kind.value}")
    if offer.unit != terms.unit:
        differences.append(f"unit: listed {terms.unit}, offered {offer.unit}")
    if offer.price != terms.price:
        differences.append(f"price: listed {terms.price}, offered {offer.price}")
    if offer.asset != terms.asset:
        differences.append(f"asset: listed {terms.asset.checksum}, offered {offer.asset.checksum}")
    return differences
