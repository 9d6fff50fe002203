"""Transfer sales: an offer of a device bought by a plain on-chain transfer of the
offer's token to the device's address, seen by the node after its confirmations and
delivered as the seconds (or units) it pays for (`m2mpay.market.transfer_follow`)."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError, provided
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import Hex32Path
from m2mpay.api.models_transfer_sales import (
    TransferPurchaseView,
    TransferSaleEnable,
    TransferSaleList,
    TransferTermsView,
)
from m2mpay.api.views import hex32, parse_hex32
from m2mpay.crypto import Address
from m2mpay.errors import CryptoError
from m2mpay.market.transfer_follow import TransferSales
from m2mpay.market.transfer_sales import Change, TransferPurchase, TransferTerms

__all__ = ["transfer_sale_routes"]

_ONCE: Final = (
    "Each transfer counts once, by its transaction and its log's position in it, across "
    "restarts and reorganisations; one not yet confirmed never counts."
)


def _terms_view(terms: TransferTerms) -> TransferTermsView:
    return TransferTermsView(
        offer_id=hex32(terms.offer_id),
        device_id=terms.device.checksum,
        service=terms.service,
        token=terms.token.checksum,
        price=str(terms.price),
        minimum=terms.minimum,
        maximum=terms.maximum,
        confirmations=terms.confirmations,
        underpay=terms.underpay.value,
        overpay=terms.overpay.value,
        from_block=terms.from_block,
    )


def _purchase_view(bought: TransferPurchase) -> TransferPurchaseView:
    return TransferPurchaseView(
        purchase_id=hex32(bought.purchase_id),
        offer_id=hex32(bought.offer_id),
        device_id=bought.device.checksum,
        tx_hash=hex32(bought.tx_hash),
        position=bought.position,
        block_number=bought.block_number,
        sender=bought.sender.checksum,
        amount=str(bought.amount),
        units=bought.sale.units,
        paid=str(bought.sale.paid),
        kept=str(bought.sale.kept),
        credit=str(bought.sale.credit),
        delivered=bought.delivered,
        done=bought.done,
    )


def _sales(gw: Gateway) -> TransferSales:
    return provided(gw.transfer_sales, "no_transfer_sales", "this node sells nothing by transfer")


def transfer_sale_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "transfer sales")

    @routes.write(
        "/v1/offers/{offer_id}/transfer-sales",
        TransferTermsView,
        status_code=201,
        summary="Sell an offer to plain transfers of its token to its device",
        description="From the next block on, a transfer of the offer's asset to the "
        "device's address buys whole units at the offer's price (within its minimum and "
        "maximum) once it has `confirmations`; the device is commanded over the bus. "
        "Enabling again replaces the terms of the device and token. " + _ONCE,
    )
    async def enable(offer_id: Hex32Path, body: TransferSaleEnable) -> TransferTermsView:
        sales = _sales(gw)
        wanted = parse_hex32(offer_id, "offer_id")
        offer = next((o for o in gw.sessions.offers() if o.offer_id == wanted), None)
        saved = next(
            (e for e in (gw.offer_book.entries() if gw.offer_book else []) if e.offer == offer),
            None,
        )
        if offer is None or saved is None:
            raise ApiError(404, "unknown_offer", f"no offer {offer_id} of a device here")
        name, _, service = saved.device.partition("/")
        try:
            device = Address(name)
        except CryptoError:
            raise ApiError(409, "not_a_device", "the offer's device has no address") from None
        terms = TransferTerms(
            offer.offer_id,
            device,
            service,
            offer.asset,
            offer.price,
            offer.min_units,
            offer.max_units,
            body.confirmations,
            Change(body.underpay),
            Change(body.overpay),
            0,
        )
        try:
            enabled = await sales.enable(terms)
        except ValueError as exc:
            raise ApiError(422, "invalid_input", str(exc)) from None
        return _terms_view(enabled)

    @routes.read(
        "/v1/transfer-sales",
        TransferSaleList,
        summary="The offers sold by transfer, and every transfer counted",
        description=_ONCE,
    )
    async def list_sales() -> TransferSaleList:
        sales = _sales(gw)
        return TransferSaleList(
            sales=[_terms_view(t) for t in sales.terms()],
            purchases=[_purchase_view(p) for p in await sales.purchases()],
        )

    return routes.router
