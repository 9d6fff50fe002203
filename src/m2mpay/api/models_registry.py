"""The bodies of the registry routes (`m2mpay.api.routes_registry`): services listed on
chain, what a listing's endpoint offers, ratings and scores."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from m2mpay.api.models import Address, Amount, Hex32, OfferView
from m2mpay.api.models_access import SELLER_URL, FeedView, a_url_we_can_ask

__all__ = [
    "ListedServiceView",
    "OfferCheckView",
    "RatingCreate",
    "RatingView",
    "ScoreList",
    "ScoreView",
    "ServiceCreate",
    "ServiceList",
    "StorefrontAsk",
    "StorefrontView",
]

GEOHASH = r"^[0-9b-hjkmnp-z]{1,12}$"
_KIND = r"^([a-z]{1,20}|kind-[0-9]{1,2}|[0-9]{1,2})$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as every request of models.py


class ScoreView(BaseModel):
    """A party's reputation in one asset, weighted by the value paid in rated sessions."""

    asset: Address
    weighted: Amount = Field(description="sum(rating × value).")
    value: Amount = Field(description="sum(value): what the rated sessions paid, capped.")
    ratings: int
    average: str | None = Field(
        description="weighted / value, to 4 decimals (1 to 5); null before any rating."
    )


class ScoreList(BaseModel):
    address: Address
    scores: list[ScoreView] = Field(description="One per asset it was rated in.")


class ListedServiceView(BaseModel):
    """A listing standing in the registry, as the node's index holds it."""

    listing_id: int
    provider: Address
    kind: str = Field(description="energy, actuation, data, compute, storage, mobility or kind-N.")
    unit: str
    price: Amount = Field(description="Per unit, in `asset`.")
    asset: Address = Field(description="0x000…0 for the native coin.")
    endpoint: str = Field(description="Where the provider's node serves its storefront.")
    location: str = Field(description="A geohash; empty for a service with no place.")
    watcher: Address | None = Field(description="The watcher the provider uses, if any.")
    score: ScoreView = Field(description="The provider's score in the listing's asset.")
    distance_m: int | None = Field(
        None, description="Metres from the query's place (`near`), between geohash cell centres."
    )
    listed_block: int
    updated_block: int


class ServiceList(BaseModel):
    services: list[ListedServiceView]
    cursor: int = Field(description="The newest block whose registry events are indexed.")


class ServiceCreate(_Request):
    """A listing: one of this node's offers (`offer_id`), or explicit terms."""

    offer_id: Hex32 | None = Field(
        None, description="List this offer of the node's storefront: its kind, unit, price, asset."
    )
    kind: str | None = Field(None, pattern=_KIND, description="Without `offer_id`: the kind.")
    unit: str | None = Field(None, min_length=1, max_length=16)
    price: Amount | None = None
    asset: Address | None = Field(None, description="Default: the node's token.")
    location: str = Field("", pattern=r"^[0-9b-hjkmnp-z]{0,12}$", description="A geohash.")
    endpoint: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        pattern=r"^https?://[!-~]+$",
        description="The storefront's URL; default: this node's API.",
    )
    watcher: Address | None = Field(
        None, description="The watcher it uses; default: the one this node feeds, if any."
    )


class OfferCheckView(BaseModel):
    """The offer the listing's endpoint serves, checked against the listing."""

    listing: ListedServiceView
    matches: bool = Field(description="An offer there says what the listing says.")
    offer: OfferView | None = Field(description="That offer, or the closest one there.")
    differences: list[str] = Field(description="What the closest offer says otherwise.")
    seller: Address | None = Field(description="The node at the endpoint, by its /v1/info.")
    peer_endpoint: str | None = Field(description="Where to open a channel to it.")


class RatingCreate(_Request):
    session_id: Hex32 = Field(description="A stopped session of this node's, countersigned.")
    rating: int = Field(ge=1, le=5)


class RatingView(BaseModel):
    session_id: Hex32
    rated: Address
    rating: int
    paid: Amount = Field(description="What the session paid, both ways, as its receipt says.")
    tx_hash: Hex32
    score: ScoreView = Field(description="The rated party's score in the channel's asset now.")


class StorefrontAsk(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"seller": "http://127.0.0.1:8402"}]}
    )
    seller: str = Field(
        pattern=SELLER_URL, max_length=400, description="The seller node's API URL."
    )

    @field_validator("seller")
    @classmethod
    def _a_url_we_can_ask(cls, seller: str) -> str:
        return a_url_we_can_ask(seller)


class StorefrontView(BaseModel):
    """Another node's storefront, read by this node (a browser reaches only its own)."""

    seller: Address = Field(description="The node at the URL, by its /v1/info.")
    peer_endpoint: str | None = Field(description="Where to open a channel to it.")
    same_chain: bool = Field(
        description="Its chain is ours (the genesis block): only then can we buy from it."
    )
    offers: list[OfferView] = Field(description="Its offers that parse, as it publishes them.")
    feeds: list[FeedView] = Field(description="The live data it sells, as it lists them.")
