"""The bodies of the transfer sale routes (`m2mpay.api.routes_transfer_sales`): an
offer bought by a plain on-chain transfer of its token to its device's address."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from m2mpay.api.models import Address, Amount, Hex32

__all__ = ["TransferPurchaseView", "TransferSaleEnable", "TransferSaleList", "TransferTermsView"]

ChangeWord = Literal["keep", "credit"]


class TransferSaleEnable(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as every request of models.py

    confirmations: int = Field(
        3, ge=1, le=64, description="Blocks a transfer needs, its own included (1: mined)."
    )
    underpay: ChangeWord = Field(
        "keep",
        description="A transfer that buys fewer units than the offer's minimum: `keep` "
        "(the owner keeps it, nothing is delivered) or `credit` (held for the sender's next).",
    )
    overpay: ChangeWord = Field(
        "keep",
        description="What is left past whole units or the offer's maximum: `keep` or `credit`.",
    )


class TransferTermsView(BaseModel):
    offer_id: Hex32
    device_id: Address = Field(description="The address a transfer is sent to.")
    service: str
    token: Address
    price: Amount = Field(description="Per unit: the offer's.")
    minimum: int = Field(description="Units; the offer's.")
    maximum: int = Field(description="Units; the offer's (0: no limit).")
    confirmations: int
    underpay: ChangeWord
    overpay: ChangeWord
    from_block: int = Field(description="Transfers mined from this block on count.")


class TransferPurchaseView(BaseModel):
    """A transfer counted, once, by its transaction and its log's position in it."""

    purchase_id: Hex32 = Field(description="Also the id of the device's session.")
    offer_id: Hex32
    device_id: Address
    tx_hash: Hex32
    position: int = Field(description="The log's position within its transaction.")
    block_number: int
    sender: Address
    amount: Amount
    units: int
    paid: Amount
    kept: Amount
    credit: Amount = Field(description="Held for the sender's next transfer to the offer.")
    delivered: int
    done: bool


class TransferSaleList(BaseModel):
    sales: list[TransferTermsView]
    purchases: list[TransferPurchaseView] = Field(description="Oldest first.")
