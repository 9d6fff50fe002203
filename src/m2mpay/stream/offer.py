"""What a seller offers: a metered service at a price, with the credit it allows."""

from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass

from m2mpay.crypto import Address
from m2mpay.plain import Bytes32, Text, Uint64, Uint256, plain_type

__all__ = ["Leader", "Offer", "ServiceKind", "new_offer", "offer_problem"]


class ServiceKind(enum.Enum):
    ENERGY = "energy"  # unit: Wh (OCPP measurand Energy.Active.Import.Register)
    ACTUATION = "actuation"  # unit: s (a lamp lit for so many seconds)
    DATA = "data"  # unit: message (a live feed)


class Leader(enum.Enum):
    """Who goes first: the party that delivers (postpaid) or the party that pays (prepaid)."""

    DELIVERER = "deliverer"
    PAYER = "payer"


@plain_type("stream.offer")
@dataclass(frozen=True, slots=True)
class Offer:
    """A seller's standing offer.

    `window` bounds credit both ways: at most `window` units delivered and not yet
    paid (when the deliverer goes first) or paid and not yet delivered (when the
    payer goes first). `batch` is how many units a delivery report (and so a
    payment) covers. `reverse_price` is what the seller pays per unit when the
    flow is reversed (a car feeding energy back); zero means it is not offered.
    """

    offer_id: Bytes32
    seller: Address
    kind: ServiceKind
    unit: Text
    price: Uint256
    asset: Address
    min_units: Uint64
    max_units: Uint64  # 0: no limit
    window: Uint64
    leader: Leader
    batch: Uint64
    reverse_price: Uint256
    valid_until_ms: Uint64


def offer_problem(offer: Offer, now_ms: int) -> str | None:
    """Why `offer` cannot be used now, or None."""
    if offer.price <= 0:
        return "price must be positive"
    if offer.window < 1:
        return "the credit window must be at least one unit"
    if not 1 <= offer.batch <= offer.window:
        return "a batch must be between one unit and the window"
    if offer.max_units and offer.min_units > offer.max_units:
        return "minimum units exceed the maximum"
    if offer.valid_until_ms <= now_ms:
        return "the offer has expired"
    return None


def new_offer(
    seller: Address,
    kind: ServiceKind,
    unit: str,
    price: int,
    asset: Address,
    *,
    window: int,
    batch: int = 1,
    leader: Leader = Leader.DELIVERER,
    min_units: int = 0,
    max_units: int = 0,
    reverse_price: int = 0,
    valid_for_s: int = 86_400,
) -> Offer:
    """An offer with a fresh id, valid for `valid_for_s` from now."""
    return Offer(
        secrets.token_bytes(32),
        seller,
        kind,
        unit,
        price,
        asset,
        min_units,
        max_units,
        window,
        leader,
        batch,
        reverse_price,
        int(time.time() * 1000) + valid_for_s * 1000,
    )
