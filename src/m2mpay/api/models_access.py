"""The bodies of the paid-data routes (`m2mpay.api.routes_feeds`, `routes_grants`):
feeds of live MQTT data a node sells, and the grants bought and sold on them.

A password appears in two answers only, each given once to the node's own owner: a
device's, when its feed is published, and a buyer's, when its grant is bought.
Neither is kept by the node."""

from __future__ import annotations

from typing import Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from m2mpay.api import examples as ex
from m2mpay.api.examples import example
from m2mpay.api.models import Address, Amount, Count, Hex32, OfferView, PositiveAmount

__all__ = [
    "DEVICE_ID",
    "SELLER_URL",
    "DeviceClientView",
    "FeedCreate",
    "FeedList",
    "FeedPublished",
    "FeedView",
    "GrantBought",
    "GrantBuy",
    "GrantExtend",
    "GrantList",
    "GrantView",
    "a_url_we_can_ask",
]

# A topic level of its own, short enough that `m2mpay-<device>` is a client name.
DEVICE_ID: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,56}$"
_USERNAME: Final = r"^[A-Za-z0-9_.-]{3,64}$"
_PASSWORD: Final = r"^[!-~]{16,128}$"
_MAX_SECONDS: Final = 10 * 366 * 86_400
_MAX_MESSAGES: Final = 10**9


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as every request of models.py


class FeedCreate(_Request):
    model_config = example(ex.FEED_CREATE)
    device_id: str = Field(
        pattern=DEVICE_ID,
        description="The device whose data is sold: its topics are `m2m/<device_id>/live` "
        "(paid) and `m2m/<device_id>/1m` (free).",
    )
    price_per_hour: PositiveAmount = Field(
        description="Per hour of the live topic; charged by the second, rounded up to whole "
        "units a second."
    )
    min_seconds: int = Field(60, ge=1, le=_MAX_SECONDS, description="The shortest purchase.")
    max_seconds: int = Field(
        86_400, ge=1, le=_MAX_SECONDS, description="The longest purchase, extensions included."
    )
    asset: Address | None = Field(None, description="Default: the deployment's token.")
    price_per_message: PositiveAmount | None = Field(
        None,
        description="Sell the feed by the message too, at this price a message, under a "
        "second offer: the node relays the live topic to each such buyer's own topic and "
        "counts what it passes on.",
    )


class FeedView(BaseModel):
    model_config = example(ex.FEED)
    feed_id: Hex32 = Field(description="The id of the offer it is sold under.")
    offer: OfferView
    device_id: str
    price_per_second: Amount
    price_per_hour: Amount
    min_seconds: Count
    max_seconds: Count
    asset: Address
    access_key: Hex32 = Field(
        description="The seller's X25519 key a buyer's node seals its MQTT credentials to."
    )
    broker: str = Field(description="host:port of the MQTT broker to read the topics on.")
    live_topic: str
    free_topic: str
    unit: Literal["s", "message"] = Field(
        "s",
        description="What this offer of the feed sells: seconds of the live topic, or its "
        "messages, relayed to the buyer's own topic under it.",
    )
    price_per_message: Amount | None = Field(None, description="A feed sold by the message.")


class FeedList(BaseModel):
    model_config = example({"feeds": [ex.FEED]})
    feeds: list[FeedView]


class DeviceClientView(BaseModel):
    """The device's own MQTT client: it may publish on its two topics and nothing else."""

    username: str
    password: str = Field(description="Shown once: the node keeps no copy.")
    host: str
    port: int


class FeedPublished(BaseModel):
    model_config = example(ex.FEED_PUBLISHED)
    feed: FeedView
    device: DeviceClientView
    per_message: FeedView | None = Field(
        None, description="The feed's offer by the message, if `price_per_message` was given."
    )


SELLER_URL: Final = r"^https?://[!-~]+$"


def a_url_we_can_ask(seller: str) -> str:
    """A seller's API URL the node can ask, or ValueError (a 422 naming the field)."""
    # The pattern lets through what no HTTP client can parse ("https://X:(?yK", found
    # by schemathesis): refused here, not as a server error when the node asks it.
    try:
        url = httpx.URL(seller)
    except httpx.InvalidURL:
        raise ValueError("not a URL an HTTP client can ask") from None
    if not url.host:
        raise ValueError("a URL with a host")
    return seller


class GrantBuy(_Request):
    model_config = example(ex.GRANT_BUY)
    seller: str = Field(
        pattern=SELLER_URL,
        max_length=400,
        description="The seller node's API URL, whose storefront lists the feed.",
    )
    feed_id: Hex32 = Field(description="The feed's id in the seller's storefront.")
    seconds: int | None = Field(
        None, ge=1, le=_MAX_SECONDS, description="Seconds of the live topic (a feed by the second)."
    )

    @field_validator("seller")
    @classmethod
    def _a_url_we_can_ask(cls, seller: str) -> str:
        return a_url_we_can_ask(seller)

    messages: int | None = Field(
        None,
        ge=1,
        le=_MAX_MESSAGES,
        description="Or messages of a feed sold by the message, relayed to the buyer's own topic.",
    )
    deposit: Amount = Field(
        "0", description="Open a channel to the seller with this deposit if none is free."
    )
    username: str | None = Field(
        None,
        pattern=_USERNAME,
        description="The MQTT username to read with; default: one the node makes up.",
    )
    password: str | None = Field(
        None,
        pattern=_PASSWORD,
        description="With `username`: its password (16 to 128 printable ASCII characters, no "
        "spaces); default: one the node makes up.",
    )


class GrantExtend(_Request):
    model_config = example({"seconds": 600})
    seconds: int | None = Field(None, ge=1, le=_MAX_SECONDS, description="Seconds more.")
    messages: int | None = Field(
        None, ge=1, le=_MAX_MESSAGES, description="Or messages more (a feed by the message)."
    )


class GrantView(BaseModel):
    model_config = example(ex.GRANT)
    session_id: Hex32 = Field(description="The metered session that pays for it.")
    role: Literal["seller", "buyer"]
    peer: Address = Field(description="The seller (for a purchase) or the buyer (for a sale).")
    feed_id: Hex32 | None = Field(description="The feed's offer id.")
    device_id: str
    broker: str = Field(description="host:port of the broker the topic is read on.")
    live_topic: str = Field(
        description="The topic the buyer reads: the live topic, or (by the message) its own "
        "relay topic under it."
    )
    username: str = Field(description="The buyer's MQTT client; its password is never shown.")
    phase: str = Field(
        description="A sale: the grant's (live, lapsed, ended; opening: a sale by the "
        "message whose relay topic is not open yet); a purchase: its session's."
    )
    seconds: Count = Field(description="Seconds bought (a purchase) or permitted (a sale).")
    unit: Literal["s", "message"] = "s"
    messages: Count | None = Field(
        None, description="By the message: bought (a purchase) or relayed (a sale)."
    )
    paid: Amount = Field(description="What the session has paid so far.")
    asset: Address | None = Field(
        None,
        description="What it is paid in (null: a sale whose session this node no longer holds).",
    )
    paid_until_ms: Count | None = Field(
        description="When read access ends: the seller's grant exactly; a purchase, as this "
        "node reckons it from when its session started (the grant opens a moment later)."
    )
    seller_url: str | None = Field(None, description="A purchase: the seller's API.")


class GrantList(BaseModel):
    model_config = example({"grants": [ex.GRANT]})
    grants: list[GrantView]


class GrantBought(BaseModel):
    """A purchase and the credentials to read it with: shown once, kept nowhere."""

    model_config = example(ex.GRANT_BOUGHT)
    grant: GrantView
    host: str
    port: int
    username: str
    password: str
    client_id: str | None = Field(
        None,
        description="By the message: read with this client id and no clean session (its "
        "persistent session holds the messages counted before the reader connects).",
    )
    readable: bool = Field(
        description="The credentials could subscribe to the live topic when the node "
        "answered; false: the seller had not granted it within a few seconds."
    )
