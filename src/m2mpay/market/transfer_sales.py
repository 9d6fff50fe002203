"""A device's service bought by a plain on-chain transfer: the rules, pure.

A wallet that knows nothing of channels sends the device's token to the device's
address; once the transfer has the confirmations its terms ask for, it buys whole units
at the offer's price. What does not buy a whole unit is the buyer's `change`, and the
terms say what becomes of it, one word each for the two cases:

- `underpay` (the transfer, with the sender's credit, buys fewer units than the offer's
  minimum, so nothing is sold): `keep` (the device's owner keeps it; nothing lights) or
  `credit` (held for the same sender's next transfer to the same offer).
- `overpay` (a remainder past whole units, or past the offer's maximum): `keep` or
  `credit`, the same way.

No refund is sent: a refund would be a transaction the node pays gas for, and a credit
serves the same wallet's next transfer without one. Each transfer is known by its
transaction and its log's position within that transaction (`purchase_id`), which a
reorganisation that moves the transaction to another block does not change, so a
transfer is counted once whichever block it lands in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from m2mpay.crypto import Address, keccak256

__all__ = [
    "Change",
    "TransferPurchase",
    "TransferSale",
    "TransferTerms",
    "purchase_id",
    "sell",
    "terms_problem",
]

MAX_CONFIRMATIONS: Final = 64  # as deep as a follower's block window undoes
_PURCHASE_DOMAIN: Final = b"m2mpay transfer purchase v1"


class Change(enum.StrEnum):
    """What becomes of what a transfer paid beyond the units it bought."""

    KEEP = "keep"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class TransferTerms:
    """An offer sold by transfer: the device (whose address receives the token), its
    service, the token, the price per unit, the offer's minimum and maximum units (0:
    none), the confirmations a transfer needs, what becomes of the change, and the
    first block whose transfers count (the one after the terms were enabled)."""

    offer_id: bytes
    device: Address
    service: str
    token: Address
    price: int
    minimum: int
    maximum: int
    confirmations: int
    underpay: Change
    overpay: Change
    from_block: int


@dataclass(frozen=True, slots=True)
class TransferSale:
    """What one transfer bought: `units` for `paid`; of the rest, `kept` by the owner
    and `credit` held for the sender. `paid + kept + credit` is the transfer's amount
    with the sender's credit before it."""

    units: int
    paid: int
    kept: int
    credit: int


@dataclass(frozen=True, slots=True)
class TransferPurchase:
    """A transfer counted: recorded before the device is commanded."""

    purchase_id: bytes  # also the id of the device's session that delivers it
    offer_id: bytes
    device: Address
    service: str
    tx_hash: bytes
    position: int  # the log's position within its transaction
    block_number: int
    sender: Address
    amount: int
    sale: TransferSale
    delivered: int = 0
    done: bool = False


def terms_problem(terms: TransferTerms) -> str | None:
    """Why `terms` cannot be sold under, or None."""
    if terms.price <= 0:
        return "the price must be positive"
    if not any(terms.token):
        return "a transfer of the chain's coin leaves no log to follow: sell a token"
    if terms.minimum < 0 or terms.maximum < 0:
        return "the minimum and maximum cannot be negative"
    if terms.maximum and terms.minimum > terms.maximum:
        return "the minimum cannot exceed the maximum"
    if not 1 <= terms.confirmations <= MAX_CONFIRMATIONS:
        return f"confirmations are 1 (mined) to {MAX_CONFIRMATIONS}"
    return None


def sell(amount: int, credit: int, terms: TransferTerms) -> TransferSale:
    """What a transfer of `amount` buys, with `credit` the sender held before it."""
    if amount < 0 or credit < 0:
        raise ValueError("an amount and a credit are never negative")
    total = amount + credit
    units = total // terms.price
    if terms.maximum:
        units = min(units, terms.maximum)
    if units < max(terms.minimum, 1):
        units = 0
    paid = units * terms.price
    change = total - paid
    policy = terms.underpay if units == 0 else terms.overpay
    if policy is Change.CREDIT:
        return TransferSale(units, paid, 0, change)
    return TransferSale(units, paid, change, 0)


def purchase_id(chain_id: int, token: Address, tx_hash: bytes, position: int) -> bytes:
    """A transfer's id, the same in whichever block its transaction lands."""
    return keccak256(
        _PURCHASE_DOMAIN
        + chain_id.to_bytes(32, "big")
        + bytes(token)
        + tx_hash
        + position.to_bytes(4, "big")
    )
