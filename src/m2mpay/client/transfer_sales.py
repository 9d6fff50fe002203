"""Transfer sales: a device's offer bought by a plain on-chain transfer of its token to
the device's address, and every transfer the node counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from m2mpay.client.base import ApiBase
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import Address

__all__ = ["TransferPurchaseView", "TransferSaleApi", "TransferSaleList", "TransferTermsView"]

ChangeWord = Literal["keep", "credit"]


@dataclass(frozen=True, slots=True)
class TransferTermsView:
    offer_id: str
    device_id: Address  # where a transfer is sent
    service: str
    token: Address
    price: Amount  # per unit: the offer's
    minimum: int
    maximum: int  # 0: no limit
    confirmations: int
    underpay: str
    overpay: str
    from_block: int  # transfers mined from this block on count


@dataclass(frozen=True, slots=True)
class TransferPurchaseView:
    """A transfer counted, once, by its transaction and its log's position in it."""

    purchase_id: str  # also the id of the device's session
    offer_id: str
    device_id: Address
    tx_hash: str
    position: int
    block_number: int
    sender: Address
    amount: Amount
    units: int
    paid: Amount
    kept: Amount
    credit: Amount  # held for the sender's next transfer to the offer
    delivered: int
    done: bool


@dataclass(frozen=True, slots=True)
class TransferSaleList:
    sales: tuple[TransferTermsView, ...] = ()
    purchases: tuple[TransferPurchaseView, ...] = ()  # oldest first


class TransferSaleApi(ApiBase):
    async def sell_by_transfer(
        self,
        offer_id: str,
        *,
        confirmations: int = 3,
        underpay: ChangeWord = "keep",
        overpay: ChangeWord = "keep",
    ) -> TransferTermsView:
        """Sell the offer (of a device on this node's bus) to plain transfers of its
        token to the device's address: from the next block on, each transfer with
        `confirmations` buys whole units at the offer's price; what buys less than the
        offer's minimum (`underpay`) and what is left past whole units or its maximum
        (`overpay`) is kept by the owner or credited to the sender's next transfer."""
        body = {"confirmations": confirmations, "underpay": underpay, "overpay": overpay}
        path = f"/v1/offers/{offer_id}/transfer-sales"
        return decode(TransferTermsView, await self._call("POST", path, body=body))

    async def transfer_sales(self) -> TransferSaleList:
        """The offers sold by transfer, and every transfer counted."""
        return decode(TransferSaleList, await self._call("GET", "/v1/transfer-sales"))
