"""What an HTTP resource costs: a `Price` per request, per byte or per second of a
streamed response, and the `PriceList` of path patterns a paywall prices.

Amounts are integers in the asset's smallest unit. A payment buys a `Purchase`: the
amount and what it covers (one request, a number of bytes, a number of seconds), so
the paywall never serves more than was paid for.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from m2mpay.crypto import Address

__all__ = ["DEFAULT_SECONDS", "Per", "Price", "PriceList", "PricedRoute", "Purchase"]

# What one payment buys of a priced-by-the-second response when not told otherwise: long
# enough that a payment's settlement (a block) is small beside it.
DEFAULT_SECONDS: Final = 60
_MAX_UNITS: Final = 1 << 64


class Per(enum.StrEnum):
    REQUEST = "request"
    BYTE = "byte"
    SECOND = "second"


@dataclass(frozen=True, slots=True)
class Purchase:
    """What one payment of `amount` buys: `units` of the price's `per` (one request,
    bytes, or seconds of the response)."""

    amount: int
    per: Per
    units: int


@dataclass(frozen=True, slots=True)
class Price:
    """`amount` of `asset` per `per`; `seconds` is what one payment buys of a response
    priced by the second."""

    amount: int
    asset: Address
    per: Per = Per.REQUEST
    seconds: int = DEFAULT_SECONDS

    def __post_init__(self) -> None:
        if not 0 < self.amount < 1 << 256:
            raise ValueError("a price is a positive amount in the asset's smallest unit")
        if not 0 < self.seconds <= 86_400:
            raise ValueError("a payment buys between 1 second and a day of a response")

    def purchase(self, size: int | None = None) -> Purchase:
        """What a request costs: one request, the `size` bytes its response declares, or
        `seconds` of it. A per-byte price needs the size: a body of unknown length cannot
        be priced before it is served, and one payment covers the whole of it."""
        if self.per is Per.REQUEST:
            return Purchase(self.amount, self.per, 1)
        if self.per is Per.SECOND:
            return Purchase(self.amount * self.seconds, self.per, self.seconds)
        if size is None or not 0 <= size < _MAX_UNITS:
            raise ValueError("a per-byte price needs the response's declared Content-Length")
        # An empty body still costs one byte's price: a payment of 0 is no payment.
        return Purchase(self.amount * max(size, 1), self.per, size)


@dataclass(frozen=True, slots=True)
class PricedRoute:
    """A path pattern (`fnmatch`: `/data/*`, `/feeds/?/live`) and its price."""

    pattern: str
    price: Price


class PriceList:
    """The priced paths, the first matching pattern winning; an unpriced path is free."""

    def __init__(self, routes: Sequence[PricedRoute]) -> None:
        self._routes = tuple(routes)

    @classmethod
    def everything(cls, price: Price) -> PriceList:
        return cls([PricedRoute("*", price)])

    def price_of(self, path: str) -> Price | None:
        for route in self._routes:
            if fnmatch.fnmatchcase(path, route.pattern):
                return route.price
        return None
