"""Metered HTTP: a response priced by the second, paid as it flows.

The first payment buys the price's `seconds`; after that the client's further payments
(in a channel: its node paying the seller's node, every period) extend the response.
`StreamMeter` is asked before every chunk the app sends: the chunk goes out only while
what the response has been served for (its unpaused seconds times the price) is within
the payment held durably (`CreditSource.credit`) plus the credit window, as the metered
sessions hold a payer to theirs. When payments stop the meter pauses the response (the
app's next send waits) and polls for credit; a pause longer than `pause_limit_s` ends
it. Paused time is not charged: nothing is served while paused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["CreditSource", "StreamMeter"]


class CreditSource(Protocol):
    async def credit(self) -> int:
        """All that is durably paid for this response so far, in the asset's smallest
        unit (it only grows)."""
        ...


class StreamMeter:
    """Holds a response priced `per_second` to its durable `source` plus `window`."""

    def __init__(
        self,
        per_second: int,
        window: int,
        source: CreditSource,
        credit: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.02,
        pause_limit_s: float = 30.0,
    ) -> None:
        if per_second <= 0 or window < 0:
            raise ValueError("a meter needs a positive price and a window of at least 0")
        self.per_second = per_second
        self.window = window
        self.credit = credit
        self.served_ms = 0
        self._source = source
        self._clock = clock
        self._poll_s = poll_s
        self._pause_limit_s = pause_limit_s
        self._mark = clock()

    @property
    def owed(self) -> int:
        """What the response served so far costs (rounded up to the unit)."""
        return -(-self.served_ms * self.per_second // 1000)

    def _tick(self) -> None:
        now = self._clock()
        self.served_ms += max(0, round((now - self._mark) * 1000))
        self._mark = now

    def within(self) -> bool:
        return self.owed <= self.credit + self.window

    async def admit(self) -> bool:
        """Before a chunk: True once it may go out (after a pause if payments lag),
        False when the pause outlasted `pause_limit_s` (end the response)."""
        self._tick()
        if self.within():
            return True
        self.credit = max(self.credit, await self._source.credit())
        paused_at = self._clock()
        while not self.within():
            if self._clock() - paused_at > self._pause_limit_s:
                return False
            await asyncio.sleep(self._poll_s)
            self.credit = max(self.credit, await self._source.credit())
        self._mark = self._clock()  # the pause is not served, so not charged
        return True
