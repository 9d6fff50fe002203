"""Feeds: a device's live MQTT data sold by the second, its average free to all.

With `price_per_message`, the feed is sold by the message as well, under a second
offer listed as a feed of its own (`unit` "message"; `m2mpay.access.relay`).

The storefront reads (`GET /v1/feeds[/{id}]`) are public, as the offers are: a
buyer's node finds a feed there. Publishing makes the device's own MQTT client,
`m2mpay-<device>`, which may publish on exactly the feed's two topics, and answers
its password once: the node keeps no copy (the broker keeps its hash). Publishing
the same device again, once its feed is retired, gives the client a new password.

Retiring a feed sells no more of it; the device's client stays, so that the grants
already paid for run to their end with live data (publish the device again to sell
it anew, with new credentials).
"""

from __future__ import annotations

import secrets
import string
from typing import Final

from fastapi import APIRouter, Response

from m2mpay.access.broker import TopicAccess
from m2mpay.access.feeds import Feed, new_feed
from m2mpay.access.relay import MESSAGE_UNIT
from m2mpay.access.sealed import access_public_key
from m2mpay.access.selling import RESERVED_PREFIX, SoldFeed
from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError, provided
from m2mpay.api.gateway import FeedDesk, Gateway
from m2mpay.api.models import Hex32Path
from m2mpay.api.models_access import (
    DeviceClientView,
    FeedCreate,
    FeedList,
    FeedPublished,
    FeedView,
)
from m2mpay.api.views import hex32, offer_view, parse_hex32
from m2mpay.crypto import Address
from m2mpay.errors import AccessError

__all__ = ["device_client", "feed_routes", "feed_view", "split_broker"]

_PASSWORD_ALPHABET: Final = string.ascii_letters + string.digits
_PASSWORD_LENGTH: Final = 32


def feed_view(sold: SoldFeed) -> FeedView:
    feed = sold.feed
    per_message = sold.offer.unit == MESSAGE_UNIT
    return FeedView(
        feed_id=hex32(sold.offer.offer_id),
        offer=offer_view(sold.offer),
        device_id=feed.device_id,
        price_per_second=str(feed.price_per_second),
        price_per_hour=str(feed.price_per_hour),
        min_seconds=feed.min_seconds,
        max_seconds=feed.max_seconds,
        asset=feed.asset.checksum,
        access_key=hex32(feed.access_key),
        broker=feed.broker,
        live_topic=feed.live_topic,
        free_topic=feed.free_topic,
        unit="message" if per_message else "s",
        price_per_message=str(sold.offer.price) if per_message else None,
    )


def split_broker(broker: str) -> tuple[str, int]:
    """`host:port` (a bracketed IPv6 host unbracketed) as host and port."""
    host, _, port = broker.rpartition(":")
    return host.strip("[]"), int(port)


def device_client(device_id: str) -> str:
    """The MQTT client name of a feed's device."""
    return RESERVED_PREFIX + device_id


def _desk(gw: Gateway) -> FeedDesk:
    return provided(gw.feeds, "no_broker", "this node sells no MQTT data (it runs with --no-mqtt)")


def _sold(gw: Gateway, feed_id: str) -> SoldFeed:
    wanted = parse_hex32(feed_id, "feed_id")
    for sold in gw.feeds.seller.feeds() if gw.feeds is not None else []:
        if sold.offer.offer_id == wanted:
            return sold
    raise ApiError(404, "unknown_feed", f"no feed {feed_id}")


async def _new_device_client(desk: FeedDesk, feed: Feed) -> DeviceClientView:
    """The device's client with a fresh password, writing its two topics only."""
    username = device_client(feed.device_id)
    password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_LENGTH))
    broker = desk.broker
    # A client left by an earlier feed of the device goes: its password is not known.
    await broker.remove_client(username)
    await broker.add_client(username, password)
    for topic in (feed.live_topic, feed.free_topic):
        await broker.allow(username, TopicAccess(topic, read=False, write=True))
    host, port = split_broker(desk.broker_at)
    return DeviceClientView(username=username, password=password, host=host, port=port)


def feed_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "feeds")

    @routes.router.get(
        "/v1/feeds",
        response_model=FeedList,
        summary="The feeds this node sells (public, as the storefront is)",
    )
    async def list_feeds() -> FeedList:
        sold = gw.feeds.seller.feeds() if gw.feeds is not None else []
        return FeedList(feeds=[feed_view(s) for s in sold])

    @routes.router.get("/v1/feeds/{feed_id}", response_model=FeedView, summary="One feed (public)")
    async def show_feed(feed_id: Hex32Path) -> FeedView:
        return feed_view(_sold(gw, feed_id))

    @routes.write(
        "/v1/feeds",
        FeedPublished,
        status_code=201,
        summary="Sell a device's live data by the second (and by the message); its average is free",
        description="Makes the device's MQTT client `m2mpay-<device_id>`, which may "
        "publish on `m2m/<device_id>/live` and `m2m/<device_id>/1m` and nothing else, and "
        "answers its password once (the node keeps no copy). With `price_per_message`, "
        "a second offer sells the feed by the message (`per_message`). A device whose "
        "feed is on sale is refused (409 `feed_exists`): retire the feed first.",
    )
    async def publish(body: FeedCreate) -> FeedPublished:
        desk = _desk(gw)
        if body.min_seconds > body.max_seconds:
            raise ApiError(422, "invalid_input", "min_seconds is above max_seconds", "min_seconds")
        if any(s.feed.device_id == body.device_id for s in desk.seller.feeds()):
            raise ApiError(
                409, "feed_exists", f"the feed of {body.device_id} is on sale", "device_id"
            )
        try:
            feed = new_feed(
                body.device_id,
                price_per_hour=int(body.price_per_hour),
                asset=Address(body.asset) if body.asset else gw.deployment.token,
                access_key=access_public_key(gw.node.key),
                broker=desk.broker_at,
                min_seconds=body.min_seconds,
                max_seconds=body.max_seconds,
            )
        except AccessError as exc:
            raise ApiError(
                422, exc.code, exc.message, "device_id" if "device" in exc.code else None
            ) from None
        device = await _new_device_client(desk, feed)
        sold = desk.seller.publish(feed)
        offers = [sold]
        if body.price_per_message is not None:
            offers.append(desk.seller.publish_per_message(feed, int(body.price_per_message)))
        if gw.feed_book is not None:
            for each in offers:
                gw.feed_book.add_sold(each)
        per_message = feed_view(offers[1]) if len(offers) > 1 else None
        return FeedPublished(feed=feed_view(sold), device=device, per_message=per_message)

    @routes.write(
        "/v1/feeds/{feed_id}",
        None,
        method="DELETE",
        status_code=204,
        summary="Sell no more of a feed; the grants paid for run to their end",
        description="The device's client stays, so that paying readers get live data "
        "until their paid time ends.",
    )
    async def retire(feed_id: Hex32Path) -> Response:
        sold = _sold(gw, feed_id)
        _desk(gw).seller.retire(sold.offer.offer_id)
        if gw.feed_book is not None:
            gw.feed_book.remove_sold(sold.offer.offer_id)
        return Response(status_code=204)

    return routes.router
