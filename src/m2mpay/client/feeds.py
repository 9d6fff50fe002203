"""Paid live data: feeds a node sells (its storefront) and the grants it buys or sells.

A password is in two answers only, each given once: the device's when its feed is
published (`FeedPublished.device`), the buyer's when it buys (`GrantBought`). Their
`repr` hides it, so that printing an answer does not leak it into a log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from m2mpay.client.base import ApiBase, decode_items, given, given_amounts, path_id
from m2mpay.client.codec import Amount, decode
from m2mpay.client.sessions import OfferView
from m2mpay.crypto import Address

__all__ = [
    "DeviceClientView",
    "FeedApi",
    "FeedPublished",
    "FeedView",
    "GrantBought",
    "GrantView",
    "StorefrontView",
]


@dataclass(frozen=True, slots=True)
class FeedView:
    """A device's live data for sale: `live_topic` paid by the second, `free_topic` free."""

    feed_id: str  # its offer's id
    offer: OfferView
    device_id: str
    price_per_second: Amount
    price_per_hour: Amount
    min_seconds: int
    max_seconds: int
    asset: Address
    access_key: str  # 0x-hex: what a buyer's node seals its credentials to
    broker: str  # host:port
    live_topic: str
    free_topic: str
    unit: Literal["s", "message"] = "s"  # "message": sold by the message, relayed
    price_per_message: Amount | None = None


@dataclass(frozen=True, slots=True)
class DeviceClientView:
    """The device's MQTT client, which may publish on its feed's two topics only."""

    username: str
    password: str = field(repr=False)
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class FeedPublished:
    feed: FeedView
    device: DeviceClientView  # shown once: the node keeps no copy of the password
    per_message: FeedView | None = None  # its offer by the message, if priced so


@dataclass(frozen=True, slots=True)
class GrantView:
    """Read access to a feed's live topic, bought (`role` buyer) or sold (seller)."""

    session_id: str
    role: Literal["seller", "buyer"]
    peer: Address
    feed_id: str | None
    device_id: str
    broker: str  # host:port
    live_topic: str  # the topic the buyer reads (by the message: its own relay topic)
    username: str
    phase: str  # a sale: live, lapsed, ended (opening); a purchase: its session's phase
    seconds: int
    paid: Amount
    paid_until_ms: int | None
    seller_url: str | None = None
    unit: Literal["s", "message"] = "s"
    messages: int | None = None  # by the message: bought, or relayed (a sale)
    asset: Address | None = None  # what it is paid in (None: a sale no longer held)


@dataclass(frozen=True, slots=True)
class GrantBought:
    """A purchase and the credentials to read it with: this answer is their only copy."""

    grant: GrantView
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    readable: bool  # the credentials could subscribe to the live topic when answered
    client_id: str | None = None  # by the message: read with it, and no clean session


@dataclass(frozen=True, slots=True)
class StorefrontView:
    """Another node's storefront as this node read it (`FeedApi.storefront`)."""

    seller: Address
    peer_endpoint: str | None  # where to open a channel to it: `start_session(endpoint=…)`
    same_chain: bool  # only then can this node buy from it
    offers: tuple[OfferView, ...]
    feeds: tuple[FeedView, ...]


class FeedApi(ApiBase):
    # -- feeds

    async def feeds(self) -> list[FeedView]:
        """The node's feeds (public: no token needed)."""
        return decode_items(FeedView, await self._call("GET", "/v1/feeds"), "feeds")

    async def feed(self, feed_id: str | bytes) -> FeedView:
        return decode(FeedView, await self._call("GET", f"/v1/feeds/{path_id(feed_id)}"))

    async def storefront(self, seller: str) -> StorefrontView:
        """The storefront of the node at `seller` (its API URL), read by this node: what
        a browser on this node's web app buys from (the token always: the node asks the
        URL it is given)."""
        raw = await self._call("POST", "/v1/storefront", body={"seller": seller})
        return decode(StorefrontView, raw)

    async def publish_feed(
        self,
        device_id: str,
        *,
        price_per_hour: int,
        min_seconds: int = 60,
        max_seconds: int = 86_400,
        asset: Address | str | None = None,
        price_per_message: int | None = None,
    ) -> FeedPublished:
        """Sell `device_id`'s live data (by the message too, with `price_per_message`);
        the answer holds the device's MQTT credentials, shown this once."""
        body: dict[str, Any] = {
            "device_id": device_id,
            "price_per_hour": str(price_per_hour),
            "min_seconds": min_seconds,
            "max_seconds": max_seconds,
            **given_amounts(price_per_message=price_per_message),
            **given(asset=asset),
        }
        return decode(FeedPublished, await self._call("POST", "/v1/feeds", body=body))

    async def retire_feed(self, feed_id: str | bytes) -> None:
        """Sell no more of a feed; grants paid for run to their end."""
        await self._call("DELETE", f"/v1/feeds/{path_id(feed_id)}")

    # -- grants

    async def buy_grant(
        self,
        seller: str,
        feed_id: str,
        *,
        seconds: int | None = None,
        messages: int | None = None,
        deposit: int = 0,
        username: str | None = None,
        password: str | None = None,
    ) -> GrantBought:
        """Buy `seconds` of the live topic of the feed `feed_id` (or `messages` of a feed
        sold by the message) that the node whose API is at `seller` sells (over a free
        channel to it, or one opened with `deposit`).
        Without `username` and `password` the node makes them up; either way the
        answer is the only place they are shown."""
        body: dict[str, Any] = {
            "seller": seller,
            "feed_id": feed_id,
            "deposit": str(deposit),
            **given(seconds=seconds, messages=messages, username=username, password=password),
        }
        return decode(GrantBought, await self._call("POST", "/v1/grants", body=body))

    async def extend_grant(
        self, session_id: str | bytes, *, seconds: int | None = None, messages: int | None = None
    ) -> GrantView:
        """`seconds` (or `messages`) more of a grant this node bought."""
        raw = await self._call(
            "POST",
            f"/v1/grants/{path_id(session_id)}/extend",
            body=given(seconds=seconds, messages=messages),
        )
        return decode(GrantView, raw)

    async def grants(self) -> list[GrantView]:
        """The grants this node bought, then those it sold."""
        return decode_items(GrantView, await self._call("GET", "/v1/grants"), "grants")

    async def grant(self, session_id: str | bytes) -> GrantView:
        return decode(GrantView, await self._call("GET", f"/v1/grants/{path_id(session_id)}"))
