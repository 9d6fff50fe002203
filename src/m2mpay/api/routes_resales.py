"""Resales: an offer of this node's backed by purchases under another node's offer (a
charger reselling a wind turbine's energy), each sale reconciled with its purchase.

A resale's terms are kept in the offer book and each purchase names the sale it
supplies, so a restarted node resells again and takes its sales up where they were.
The sales and purchases themselves are sessions like any other, listed under
/v1/sessions (a purchase shows the sale it `supplies`).
"""

from __future__ import annotations

import time
from typing import Final

from fastapi import APIRouter

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.models_resales import (
    ReconciliationView,
    ResaleCreate,
    ResaleList,
    ResaleView,
)
from m2mpay.api.routes_info import require_funds
from m2mpay.api.views import hex32, offer_from_view, offer_view
from m2mpay.crypto import UINT256_MAX, Address
from m2mpay.market.offer_book import ResaleTerms
from m2mpay.market.resale import Resale
from m2mpay.stream.offer import offer_problem

__all__ = ["resale_routes", "resale_view"]

_DURABLE: Final = (
    "The resale survives a restart of this node: it is published again and each sale "
    "keeps the purchase behind it."
)


def resale_view(gw: Gateway, resale: Resale) -> ResaleView:
    assert resale.offer is not None  # published before it is kept
    reconciliations = []
    for sale_id in resale.sales():
        report = resale.reconcile(sale_id)
        reconciliations.append(
            ReconciliationView(
                sale_id=hex32(report.sale_id),
                purchase_id=hex32(report.purchase_id),
                sale_phase=gw.sessions.session(report.sale_id).phase.value,
                purchase_phase=gw.sessions.session(report.purchase_id).phase.value,
                units_bought=report.units_bought,
                units_sold=report.units_sold,
                paid_upstream=str(report.paid_upstream),
                received_downstream=str(report.received_downstream),
                commission=str(report.commission),
                balanced=report.balanced,
            )
        )
    return ResaleView(
        offer=offer_view(resale.offer),
        source_offer_id=hex32(resale.source.offer_id),
        source_seller=resale.source.seller.checksum,
        commission=str(resale.commission),
        reconciliations=reconciliations,
    )


async def _require_deposit(gw: Gateway, asset: Address, deposit: int) -> None:
    if not deposit:
        return
    try:
        await require_funds(gw, asset, deposit, "deposit")
    except ApiError as exc:
        if exc.field == "asset":  # the source's asset is no token
            exc.field = "source.asset"
        raise


def resale_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "resales")

    @routes.write(
        "/v1/resales",
        ResaleView,
        status_code=201,
        summary="Resell another node's offer with a commission per unit",
        description="Publishes an offer of this node's at the source's price plus the "
        "commission, metered by `device`; each session sold under it starts a purchase "
        "under the source's offer (over a free channel to the source, or a new one with "
        "`deposit`), and each ends with the other. " + _DURABLE,
    )
    async def create(body: ResaleCreate) -> ResaleView:
        source = offer_from_view(body.source)
        if source.seller == gw.node.address:
            raise ApiError(422, "invalid_input", "a resale needs another node's offer", "source")
        problem = offer_problem(source, int(time.time() * 1000))
        if problem is not None:
            raise ApiError(422, "invalid_offer", f"the source offer: {problem}", "source")
        commission = int(body.commission)
        if source.price + commission > UINT256_MAX:
            raise ApiError(422, "invalid_input", "the price would overflow", "commission")
        window, batch = body.window or source.window, body.batch or source.batch
        if batch > window:
            raise ApiError(422, "invalid_input", "batch cannot exceed the window", "batch")
        meter = gw.device_supply(body.device, "device")
        await _require_deposit(gw, source.asset, int(body.deposit))
        if body.endpoint and not gw.node.is_connected(source.seller):
            await gw.node.connect(body.endpoint, source.seller)
        terms = ResaleTerms(
            source,
            commission,
            int(body.purchase_budget),
            int(body.deposit),
            body.endpoint,
        )
        resale = gw.resell(terms, meter, window=window, batch=batch)
        if gw.offer_book is not None:
            assert resale.offer is not None
            assert body.device is not None
            gw.offer_book.add(resale.offer, body.device, terms)
        return resale_view(gw, resale)

    @routes.read(
        "/v1/resales",
        ResaleList,
        summary="The resales, each sale reconciled with its purchase",
        description=_DURABLE,
    )
    async def list_resales() -> ResaleList:
        return ResaleList(resales=[resale_view(gw, r) for r in gw.resales.values()])

    return routes.router
