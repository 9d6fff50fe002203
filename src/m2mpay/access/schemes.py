"""What a paywall asks of a payment scheme, whatever it settles on.

A `Scheme` offers its `requirements` for a purchase, `verify`s a payment against the
requirements it offered (raising `PaymentRefused` with x402's reason, having moved
nothing), and `settle`s a verified payment: durable, and final as far as the seller is
concerned, before the paywall serves anything. The `exact` scheme on EVM
(`access/exact.py`) settles each payment on chain; a channel-backed scheme settles by
a balance proof the seller keeps, and is one more implementation of the same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from m2mpay.access.pricing import Purchase
from m2mpay.access.x402_wire import (
    PaymentPayload,
    PaymentRequirements,
    ResourceInfo,
    SettleResponse,
)
from m2mpay.crypto import Address

__all__ = ["Scheme", "Verified"]


@dataclass(frozen=True, slots=True)
class Verified:
    """A payment its scheme accepted for `requirements`, ready to settle; `proof` is the
    scheme's own (what its `settle` needs), opaque to the paywall."""

    payer: Address
    amount: int
    requirements: PaymentRequirements
    resource: str
    proof: object


class Scheme(Protocol):
    @property
    def name(self) -> str:
        """The x402 scheme's name (`exact`, `batch-settlement`)."""
        ...

    def requirements(self, resource: ResourceInfo, purchase: Purchase) -> PaymentRequirements:
        """How to pay for `purchase` of `resource` under this scheme."""
        ...

    async def verify(self, payment: PaymentPayload, requirements: PaymentRequirements) -> Verified:
        """Hold `payment` against the `requirements` this scheme offered; refuse with
        `PaymentRefused` (x402's reason) having changed nothing."""
        ...

    async def settle(self, verified: Verified) -> SettleResponse:
        """Make the payment durable and final before the paywall serves; a refusal
        (`PaymentRefused`) means nothing was charged."""
        ...
