"""Offers (the storefront, public) and metered sessions: start, watch, price, reverse, stop."""

from __future__ import annotations

from fastapi import APIRouter, Response

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import (
    Hex32Path,
    OfferCreate,
    OfferList,
    OfferView,
    PriceSignal,
    ReceiptView,
    SessionList,
    SessionReverse,
    SessionStart,
    SessionStop,
    SessionView,
)
from m2mpay.api.views import offer_from_view, offer_view, parse_hex32, session_view
from m2mpay.crypto import Address
from m2mpay.stream import Leader, ServiceKind, new_offer

__all__ = ["session_routes"]


def session_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials)

    @routes.router.get(
        "/v1/offers", response_model=OfferList, tags=["offers"], summary="The storefront"
    )
    async def list_offers() -> OfferList:
        return OfferList(offers=[offer_view(o) for o in gw.sessions.offers()])

    @routes.write(
        "/v1/offers",
        OfferView,
        status_code=201,
        tags=["offers"],
        summary="Sell a device's service: each session is supplied by the device",
    )
    async def publish(body: OfferCreate) -> OfferView:
        if body.batch > body.window:
            raise ApiError(422, "invalid_input", "batch cannot exceed the window", "batch")
        device = body.device or ""
        supply = gw.device_supply(device, "device")
        offer = new_offer(
            gw.node.address,
            ServiceKind(body.kind),
            body.unit,
            int(body.price),
            Address(body.asset) if body.asset else gw.deployment.token,
            window=body.window,
            batch=body.batch,
            leader=Leader(body.leader),
            min_units=body.min_units,
            max_units=body.max_units,
            reverse_price=int(body.reverse_price),
            valid_for_s=body.valid_for_s,
        )
        gw.sessions.publish(offer, supply)
        if gw.offer_book is not None:
            gw.offer_book.add(offer, device)
        return offer_view(offer)

    @routes.write("/v1/offers/{offer_id}", None, method="DELETE", status_code=204, tags=["offers"])
    async def withdraw(offer_id: Hex32Path) -> Response:
        offer = parse_hex32(offer_id, "offer_id")
        if all(o.offer_id != offer for o in gw.sessions.offers()):
            raise ApiError(404, "unknown_offer", f"no offer {offer_id}")
        gw.sessions.withdraw(offer)
        if gw.offer_book is not None:
            gw.offer_book.remove(offer)
        if gw.transfer_sales is not None:  # nor is it sold to plain transfers any more
            await gw.transfer_sales.disable(offer)
        return Response(status_code=204)

    @routes.write(
        "/v1/sessions",
        SessionView,
        status_code=201,
        tags=["sessions"],
        summary="Buy under a seller's offer; answers once the seller runs the session",
        description="With `allow_reverse`, the seller may reverse the flow: then this "
        "node delivers, through the device on its own bus that `feed_back_device` names "
        "(a car's battery feeding the grid), and the seller pays at the offer's "
        "`reverse_price`. That link is kept in memory: after a restart of this node the "
        "backward flow has no device until the session ends.",
    )
    async def start(body: SessionStart) -> SessionView:
        feed_back = None
        if body.feed_back_device is not None:
            if not body.allow_reverse:
                raise ApiError(
                    422,
                    "invalid_input",
                    "a feed_back_device is only used when allow_reverse is true",
                    "allow_reverse",
                )
            feed_back = gw.device_supply(body.feed_back_device, "feed_back_device")
        offer = offer_from_view(body.offer)
        if body.endpoint and not gw.node.is_connected(offer.seller):
            await gw.node.connect(body.endpoint, offer.seller)
        info = await gw.sessions.start_session(
            offer,
            channel_id=parse_hex32(body.channel_id, "channel_id") if body.channel_id else None,
            deposit=int(body.deposit),
            budget=int(body.budget),
            target_units=body.target_units,
            limit_price=int(body.limit_price) if body.limit_price is not None else None,
            allow_reverse=body.allow_reverse,
            feed_back=feed_back,
            endpoint=body.endpoint,
        )
        return session_view(info)

    @routes.read("/v1/sessions", SessionList, tags=["sessions"])
    async def list_sessions() -> SessionList:
        return SessionList(sessions=[session_view(s) for s in gw.sessions.sessions()])

    @routes.read("/v1/sessions/{session_id}", SessionView, tags=["sessions"])
    async def show(session_id: Hex32Path) -> SessionView:
        return session_view(gw.sessions.session(parse_hex32(session_id, "session_id")))

    @routes.read(
        "/v1/sessions/{session_id}/receipt",
        ReceiptView,
        tags=["sessions"],
        summary="Our signed receipt, once the session has stopped",
    )
    async def receipt(session_id: Hex32Path) -> ReceiptView:
        view = session_view(gw.sessions.session(parse_hex32(session_id, "session_id")))
        if view.receipt is None:
            raise ApiError(404, "not_found", "no receipt yet: the session has not stopped")
        return view.receipt

    @routes.write("/v1/sessions/{session_id}/stop", SessionView, tags=["sessions"])
    async def stop(session_id: Hex32Path, body: SessionStop) -> SessionView:
        info = await gw.sessions.stop_session(
            parse_hex32(session_id, "session_id"), body.reason, wait=body.wait
        )
        return session_view(info)

    @routes.write(
        "/v1/sessions/{session_id}/price",
        SessionView,
        tags=["sessions"],
        summary="A seller's price signal for the units not yet delivered",
    )
    async def price(session_id: Hex32Path, body: PriceSignal) -> SessionView:
        session = parse_hex32(session_id, "session_id")
        gw.sessions.set_price(session, int(body.price))
        return session_view(gw.sessions.session(session))

    @routes.write(
        "/v1/sessions/{session_id}/reverse",
        SessionView,
        tags=["sessions"],
        summary="Switch the direction of supply (and of payment)",
    )
    async def reverse(session_id: Hex32Path, body: SessionReverse) -> SessionView:
        session = parse_hex32(session_id, "session_id")
        gw.sessions.reverse(session, body.reversed)
        return session_view(gw.sessions.session(session))

    return routes.router
