"""Resales: a node's offer backed by purchases under another node's offer, each sale
reconciled with the purchase behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from m2mpay.client.base import ApiBase, given, items_of
from m2mpay.client.codec import Amount, decode, encode
from m2mpay.client.sessions import OfferView
from m2mpay.crypto import Address

__all__ = ["ReconciliationView", "ResaleApi", "ResaleView"]


@dataclass(frozen=True, slots=True)
class ReconciliationView:
    """One sale and the purchase behind it, side by side."""

    sale_id: str
    purchase_id: str
    sale_phase: str
    purchase_phase: str
    units_bought: int
    units_sold: int
    paid_upstream: Amount
    received_downstream: Amount
    commission: Amount  # per unit
    balanced: bool  # every unit bought was sold, and the margin is the commission on each

    @property
    def margin(self) -> int:
        """What the reseller kept (negative while it has paid ahead of its buyer)."""
        return self.received_downstream - self.paid_upstream


@dataclass(frozen=True, slots=True)
class ResaleView:
    offer: OfferView  # the reseller's own, in its storefront
    source_offer_id: str
    source_seller: Address
    commission: Amount  # per unit
    reconciliations: tuple[ReconciliationView, ...] = ()


class ResaleApi(ApiBase):
    async def publish_resale(
        self,
        source: OfferView,
        *,
        commission: int,
        device: str,
        endpoint: str | None = None,
        purchase_budget: int = 0,
        deposit: int = 0,
        window: int | None = None,
        batch: int | None = None,
    ) -> ResaleView:
        """Resell `source` (as the source's node published it) at its price plus
        `commission` per unit, metered by this node's `device` (`device-id/service`).
        Each sale buys under `source` over a free channel to its seller, or one opened
        with `deposit` (`endpoint` is the source's wire if not connected), paying at
        most `purchase_budget` (0: no limit). The resale survives a restart of the node:
        it resells again, each running sale with the purchase behind it."""
        body: dict[str, Any] = {
            "source": encode(source),
            "commission": str(commission),
            "device": device,
            "purchase_budget": str(purchase_budget),
            "deposit": str(deposit),
            **given(endpoint=endpoint, window=window, batch=batch),
        }
        return decode(ResaleView, await self._call("POST", "/v1/resales", body=body))

    async def resales(self) -> list[ResaleView]:
        raw = await self._call("GET", "/v1/resales")
        return [decode(ResaleView, r, "resales[]") for r in items_of(raw, "resales")]
