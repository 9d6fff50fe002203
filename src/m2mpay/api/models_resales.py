"""The bodies of the resale routes (`m2mpay.api.routes_resales`): an offer of this
node's backed by purchases under another node's, and how each sale reconciles."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from m2mpay.api.models import Address, Amount, Endpoint, Hex32, OfferView

__all__ = ["ReconciliationView", "ResaleCreate", "ResaleList", "ResaleView"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as every request of models.py


class ResaleCreate(_Request):
    source: OfferView = Field(description="The upstream offer, as the source's node publishes it.")
    endpoint: Endpoint | None = Field(None, description="The source node's wire endpoint.")
    commission: Amount = Field(description="Added to the source's price, per unit.")
    device: str = Field(
        max_length=200,
        description="This node's meter of what it sells, a registered `device/service`.",
    )
    purchase_budget: Amount = Field("0", description="The most each purchase pays; 0: no limit.")
    deposit: Amount = Field(
        "0", description="Open a channel to the source with this deposit if none is free."
    )
    window: int | None = Field(
        None, ge=1, le=1_000_000, description="Credit window in units; default: the source's."
    )
    batch: int | None = Field(
        None, ge=1, le=1_000_000, description="Units per report and payment; default: the source's."
    )


class ReconciliationView(BaseModel):
    """One sale and the purchase behind it; the margin is received_downstream - paid_upstream."""

    sale_id: Hex32
    purchase_id: Hex32
    sale_phase: str
    purchase_phase: str
    units_bought: int
    units_sold: int
    paid_upstream: Amount
    received_downstream: Amount
    commission: Amount = Field(description="Per unit.")
    balanced: bool = Field(
        description="Every unit bought was sold, and the margin is the commission on each."
    )


class ResaleView(BaseModel):
    offer: OfferView = Field(description="This node's offer, in its storefront.")
    source_offer_id: Hex32
    source_seller: Address
    commission: Amount = Field(description="Per unit.")
    reconciliations: list[ReconciliationView] = Field(
        description="Each sale with a purchase behind it, oldest first."
    )


class ResaleList(BaseModel):
    resales: list[ResaleView]
