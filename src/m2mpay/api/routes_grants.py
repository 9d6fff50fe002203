"""Grants: read access to a feed's live topic, bought by this node or sold by it.

Buying (`POST /v1/grants`) is the buyer's node's work from start to end: it reads the
feed from the seller's public storefront, checks it against the offer it is sold
under, connects to the seller, seals the MQTT credentials (given, or made up here) to
the seller's access key and to the session, and starts the prepaid session, which
opens a channel with `deposit` if none is free; it answers once the credentials
may subscribe to the live topic on the seller's broker (`readable`), or after a
few seconds if they may not yet. The credentials are in that one
answer to the node's own owner and nowhere else: not in the node's files, not in its
log, not in any later answer. The seller refuses a sealed box that does not open or a
username another buyer holds before any payment (409 `refused_by_seller`, with its
reason).

A feed sold by the message is bought with `messages` instead of `seconds`: the buyer
reads its own relay topic (`live_topic` in the answer) with the client id it is given
and no clean session, so that no counted message is lost before it connects.

What this node bought is kept in its feed book (`feeds.json`) with the seller's URL
and the username; what it sold are its grant keeper's grants.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import httpx
import orjson
from fastapi import APIRouter
from pydantic import ValidationError

from m2mpay.access.feed_book import BoughtFeed
from m2mpay.access.feeds import Feed, cost, feed_problem
from m2mpay.access.grant import Grant, GrantPhase
from m2mpay.access.reading import wait_readable
from m2mpay.access.relay import MESSAGE_UNIT, message_offer, relay_client_id, relay_topic
from m2mpay.access.sealed import Credentials, seal, sealed_context
from m2mpay.access.selling import RESERVED_PREFIX, feed_offer
from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import Hex32Path, InfoView
from m2mpay.api.models_access import (
    FeedView,
    GrantBought,
    GrantBuy,
    GrantExtend,
    GrantList,
    GrantView,
)
from m2mpay.api.routes_feeds import split_broker
from m2mpay.api.views import hex32, offer_from_view, parse_hex32
from m2mpay.crypto import Address
from m2mpay.errors import AccessError, M2MPayError, StreamError
from m2mpay.stream import Offer, SessionInfo

__all__ = ["ask_seller", "grant_routes"]

_SELLER_TIMEOUT_S: Final = 10.0
_MAX_SELLER_ANSWER: Final = 1024 * 1024
_READABLE_WITHIN_S: Final = 10.0


def _sold_view(gw: Gateway, grant: Grant) -> GrantView:
    info = _session(gw, grant.session_id)
    by_message = info is not None and info.offer.unit == MESSAGE_UNIT
    # By the message, the grant lasts the session; the session's count is what was sold.
    # Until its relay topic is open for the buyer, nothing is counted: "opening".
    relaying = gw.feeds is not None and gw.feeds.seller.relaying(grant.session_id)
    opening = by_message and grant.phase is GrantPhase.LIVE and not relaying
    phase = "opening" if opening else grant.phase.value
    return GrantView(
        session_id=hex32(grant.session_id),
        role="seller",
        peer=grant.buyer.checksum,
        feed_id=hex32(info.offer.offer_id) if info is not None else None,
        device_id=grant.topic.split("/")[1],
        broker=gw.feeds.broker_at if gw.feeds is not None else "",
        live_topic=grant.topic,
        username=grant.username,
        phase=phase,
        seconds=0 if by_message else grant.permitted_s,
        unit="message" if by_message else "s",
        messages=info.forward.units if info is not None and by_message else None,
        paid="0" if info is None else str(info.forward.paid),
        asset=None if info is None else info.offer.asset.checksum,
        paid_until_ms=None if by_message else grant.paid_until_ms,
        seller_url=None,
    )


def _bought_view(gw: Gateway, bought: BoughtFeed) -> GrantView:
    info = _session(gw, bought.session_id)
    paid = info.forward.paid if info is not None else 0
    by_message = bought.offer.unit == MESSAGE_UNIT
    paid_until = None
    if not by_message and info is not None and info.started_ms:
        paid_until = info.started_ms + 1000 * (paid // bought.feed.price_per_second)
    return GrantView(
        session_id=hex32(bought.session_id),
        role="buyer",
        peer=bought.offer.seller.checksum,
        feed_id=hex32(bought.offer.offer_id),
        device_id=bought.feed.device_id,
        broker=bought.feed.broker,
        live_topic=(
            relay_topic(bought.feed, bought.session_id) if by_message else bought.feed.live_topic
        ),
        username=bought.username,
        phase=info.phase.value if info is not None else "unknown",
        # A purchase by the message keeps its count of messages where seconds would be.
        seconds=0 if by_message else bought.seconds,
        unit="message" if by_message else "s",
        messages=bought.seconds if by_message else None,
        paid=str(paid),
        asset=bought.offer.asset.checksum,
        paid_until_ms=paid_until,
        seller_url=bought.seller_url,
    )


def _session(gw: Gateway, session_id: bytes) -> SessionInfo | None:
    try:
        return gw.sessions.session(session_id)
    except StreamError:
        return None


async def ask_seller(
    http: httpx.AsyncClient,
    seller: str,
    path: str,
    what: str,
    *,
    missing: tuple[str, str] = ("unknown_feed", "feed_id"),
) -> Any:
    """The seller's JSON answer to a GET of `path`, read up to a bound and parsed with
    orjson (whose nesting depth is bounded: another node's bytes are untrusted); a 404
    is answered with `missing`'s code and field."""
    body = bytearray()
    try:
        async with http.stream("GET", seller.rstrip("/") + path) as answer:
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > _MAX_SELLER_ANSWER:
                    break
    except httpx.HTTPError as exc:
        raise ApiError(
            409, "seller_unreachable", f"the seller at {seller} did not answer: {exc}", "seller"
        ) from None
    if answer.status_code == 404:
        raise ApiError(404, missing[0], f"the seller at {seller} has no {what}", missing[1])
    if not answer.is_success or len(body) > _MAX_SELLER_ANSWER:
        raise ApiError(
            409,
            "seller_refused",
            f"the seller at {seller} answered {answer.status_code} for its {what}"
            + (" (too long)" if len(body) > _MAX_SELLER_ANSWER else ""),
            "seller",
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(409, "bad_feed", f"the seller's {what} is not JSON", "seller") from None


def _checked_feed(view: FeedView, info: InfoView) -> tuple[Feed, Offer]:
    """The feed and its offer as the seller shows them, if they agree with each other."""
    try:
        offer = offer_from_view(view.offer)
        feed = Feed(
            view.device_id,
            int(view.price_per_second),
            view.min_seconds,
            view.max_seconds,
            Address(view.asset),
            parse_hex32(view.access_key, "access_key"),
            view.broker,
        )
        seller = Address(info.address)
    except (M2MPayError, ValueError) as exc:  # a checksum that is wrong, say
        raise ApiError(409, "bad_feed", f"the seller's feed: {exc}", "feed_id") from None
    problem = feed_problem(feed)
    if problem is None and offer.seller != seller:
        problem = "its offer names another seller than the node that shows it"
    if problem is None:
        per_message = view.unit == "message"
        if per_message and (view.price_per_message or "") != str(offer.price):
            problem = "its price per message is not its offer's"
        expected = (
            message_offer(feed, offer.seller, offer.price)
            if per_message
            else feed_offer(feed, offer.seller)
        )
        fields = ("kind", "unit", "price", "asset", "min_units", "max_units", "leader", "window")
        if problem is None and any(getattr(offer, f) != getattr(expected, f) for f in fields):
            problem = "its offer does not sell its units at its price"
    if problem is None and view.feed_id.lower() != hex32(offer.offer_id):
        problem = "its id is not its offer's"
    if problem is not None:
        raise ApiError(409, "bad_feed", f"the seller's feed: {problem}", "feed_id")
    return feed, offer


async def _seller_feed(seller: str, feed_id: str) -> tuple[Feed, Offer, InfoView]:
    async with httpx.AsyncClient(timeout=_SELLER_TIMEOUT_S) as http:
        raw_feed = await ask_seller(http, seller, f"/v1/feeds/{feed_id}", f"feed {feed_id}")
        raw_info = await ask_seller(http, seller, "/v1/info", "node info")
    try:
        view = FeedView.model_validate(raw_feed)
        info = InfoView.model_validate(raw_info)
    except ValidationError as exc:
        raise ApiError(
            409,
            "bad_feed",
            f"the seller's answer is not a feed: {exc.errors()[0]['msg']}",
            "seller",
        ) from None
    feed, offer = _checked_feed(view, info)
    return feed, offer, info


def _credentials(body: GrantBuy) -> Credentials:
    if (body.username is None) != (body.password is None):
        raise ApiError(
            422, "invalid_input", "give both username and password, or neither", "password"
        )
    if body.username is None or body.password is None:
        return Credentials.generate()
    if body.username.startswith(RESERVED_PREFIX):
        raise ApiError(
            422,
            "bad_username",
            f"names starting with {RESERVED_PREFIX!r} are nodes' own",
            "username",
        )
    try:
        return Credentials(body.username, body.password)
    except AccessError as exc:
        raise ApiError(422, exc.code, exc.message, exc.code.removeprefix("bad_")) from None


def _units(offer: Offer, seconds: int | None, messages: int | None) -> tuple[int, str]:
    """The units a purchase or extension asks for, and the field that gives them: seconds
    of a feed by the second, messages of one by the message."""
    by_message = offer.unit == MESSAGE_UNIT
    wanted, other = ("messages", "seconds") if by_message else ("seconds", "messages")
    units = messages if by_message else seconds
    if units is None or (messages if not by_message else seconds) is not None:
        raise ApiError(
            422,
            "invalid_input",
            f"this feed is sold by the {'message' if by_message else 'second'}: give "
            f"{wanted}, not {other}",
            wanted,
        )
    return units, wanted


def _check_messages(offer: Offer, messages: int, field: str) -> None:
    if offer.max_units and messages > offer.max_units:
        raise ApiError(
            422,
            "above_max_messages",
            f"this feed sells at most {offer.max_units} messages in all, not {messages}",
            field,
        )


def _priced(feed: Feed, offer: Offer, body: GrantBuy) -> tuple[int, int]:
    """The units a purchase asks for and their price, checked against the feed."""
    units, field = _units(offer, body.seconds, body.messages)
    by_message = offer.unit == MESSAGE_UNIT
    if by_message:
        _check_messages(offer, units, field)
        price = units * offer.price
    else:
        _check_seconds(feed, units, field)
        price = cost(feed, units)
    if 0 < int(body.deposit) < price:
        raise ApiError(
            422,
            "invalid_input",
            f"a deposit of {body.deposit} is below the {price} that {units} "
            f"{'messages' if by_message else 's'} cost",
            "deposit",
        )
    return units, price


def _extended(purchase: BoughtFeed, body: GrantExtend) -> tuple[int, int]:
    """The units a purchase comes to with an extension, and what they cost in all."""
    more, field = _units(purchase.offer, body.seconds, body.messages)
    total = purchase.seconds + more
    if purchase.offer.unit == MESSAGE_UNIT:
        _check_messages(purchase.offer, total, field)
        return total, total * purchase.offer.price
    if total > purchase.feed.max_seconds:
        raise ApiError(
            422,
            "above_max_seconds",
            f"this feed sells at most {purchase.feed.max_seconds} s in all: "
            f"{purchase.seconds} s are bought, {purchase.feed.max_seconds - purchase.seconds} "
            "s more at most",
            "seconds",
        )
    return total, cost(purchase.feed, total)


def _check_seconds(feed: Feed, seconds: int, field: str) -> None:
    if not feed.min_seconds <= seconds <= feed.max_seconds:
        raise ApiError(
            422,
            "below_min_seconds" if seconds < feed.min_seconds else "above_max_seconds",
            f"this feed sells {feed.min_seconds} to {feed.max_seconds} s in all, not {seconds} s",
            field,
        )


def grant_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "grants")

    def bought(session_id: bytes) -> BoughtFeed:
        found = gw.feed_book.purchase(session_id) if gw.feed_book is not None else None
        if found is None:
            raise ApiError(404, "unknown_grant", f"this node bought no grant {hex32(session_id)}")
        return found

    @routes.write(
        "/v1/grants",
        GrantBought,
        status_code=201,
        summary="Buy read access to another node's feed; answers the credentials once",
        description="The node reads the feed from the seller's storefront, seals the MQTT "
        "credentials (`username` and `password`, or ones it makes up) to the seller and "
        "starts a prepaid session for `seconds`, or `messages` of a feed sold by the "
        "message (read on the answer's `live_topic` with its `client_id`). The answer is "
        "the only place the password is ever shown: the node keeps no copy.",
    )
    async def buy(body: GrantBuy) -> GrantBought:
        credentials = _credentials(body)
        feed, offer, info = await _seller_feed(body.seller, body.feed_id)
        if offer.seller == gw.node.address:
            raise ApiError(422, "invalid_input", "this node sells that feed itself", "seller")
        units, price = _priced(feed, offer, body)
        by_message = offer.unit == MESSAGE_UNIT
        endpoint = info.peer_endpoint
        if endpoint and not gw.node.is_connected(offer.seller):
            await gw.node.connect(endpoint, offer.seller)
        session_id = secrets.token_bytes(32)
        terms = seal(
            feed.access_key,
            credentials,
            sealed_context(gw.node.address, feed.device_id, session_id),
        )
        try:
            started = await gw.sessions.start_session(
                offer,
                deposit=int(body.deposit),
                # The whole price, which a channel that cannot pay it is refused for
                # before anything is asked of the seller.
                budget=price,
                target_units=units,
                supply_terms=terms,
                session_id=session_id,
                endpoint=endpoint,
            )
        except StreamError as exc:
            if exc.code == "rejected":
                raise ApiError(409, "refused_by_seller", exc.message) from None
            raise
        purchase = BoughtFeed(
            started.session_id, feed, offer, body.seller, credentials.username, units
        )
        if gw.feed_book is not None:
            gw.feed_book.add_bought(purchase)
        host, port = split_broker(feed.broker)
        topic = relay_topic(feed, session_id) if by_message else feed.live_topic
        readable = await wait_readable(host, port, credentials, topic, _READABLE_WITHIN_S)
        return GrantBought(
            grant=_bought_view(gw, purchase),
            host=host,
            port=port,
            username=credentials.username,
            password=credentials.password,
            client_id=relay_client_id(credentials) if by_message else None,
            readable=readable,
        )

    @routes.write(
        "/v1/grants/{session_id}/extend",
        GrantView,
        summary="Buy more seconds (or messages) of a grant this node bought; no gap if "
        "before its end",
    )
    async def extend(session_id: Hex32Path, body: GrantExtend) -> GrantView:
        purchase = bought(parse_hex32(session_id, "session_id"))
        total, budget = _extended(purchase, body)
        gw.sessions.extend_session(purchase.session_id, target_units=total, budget=budget)
        assert gw.feed_book is not None  # `bought` found it there
        return _bought_view(gw, gw.feed_book.extend(purchase.session_id, total))

    @routes.read(
        "/v1/grants",
        GrantList,
        summary="The grants this node bought, then those it sold (never a password)",
    )
    async def list_grants() -> GrantList:
        book = gw.feed_book
        views = [_bought_view(gw, b) for b in book.bought()] if book is not None else []
        if gw.feeds is not None:
            views += [_sold_view(gw, g) for g in gw.feeds.keeper.grants()]
        return GrantList(grants=views)

    @routes.read("/v1/grants/{session_id}", GrantView, summary="One grant, bought or sold")
    async def show_grant(session_id: Hex32Path) -> GrantView:
        wanted = parse_hex32(session_id, "session_id")
        if gw.feed_book is not None and (found := gw.feed_book.purchase(wanted)) is not None:
            return _bought_view(gw, found)
        grant = gw.feeds.keeper.grant(wanted) if gw.feeds is not None else None
        if grant is None:
            raise ApiError(404, "unknown_grant", f"no grant {session_id}")
        return _sold_view(gw, grant)

    return routes.router
