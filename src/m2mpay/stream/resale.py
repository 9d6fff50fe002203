"""Linked sessions along a value chain: a reseller (a charger) buys from a source
(a wind turbine) exactly what it sells to its buyer (a car), at its source's price
plus a commission per unit, and stops buying when its sale stops.

Each sale gets its own purchase, started when the sale starts and stopped when it
stops (and the other way round: no supply upstream ends the sale). What flows is
metered once on each side of the reseller: the source's meter bills the purchase,
the reseller's own `meter` bills the sale, and nothing is stored in between (a cable
in the field; `RelayMeter` on a `PowerLine` in the simulation), so the two agree to
the unit and the reseller's margin is its commission on every unit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from m2mpay.errors import M2MPayError
from m2mpay.stream.info import SessionInfo
from m2mpay.stream.manager import SessionManager
from m2mpay.stream.offer import Offer, new_offer
from m2mpay.stream.outputs import SessionEvent, SessionStopped
from m2mpay.stream.state import SessionPhase
from m2mpay.stream.supply import Supply, SupplyFactory, SupplyRequest

__all__ = ["Reconciliation", "Resale"]

log = logging.getLogger("m2mpay.stream.resale")


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One sale and the purchase behind it, side by side."""

    sale_id: bytes
    purchase_id: bytes
    units_bought: int
    units_sold: int
    paid_upstream: int
    received_downstream: int
    commission: int  # per unit

    @property
    def margin(self) -> int:
        return self.received_downstream - self.paid_upstream

    @property
    def balanced(self) -> bool:
        """Every unit bought was sold, and the margin is the commission on each."""
        return (
            self.units_bought == self.units_sold
            and self.margin == self.units_sold * self.commission
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "sale": "0x" + self.sale_id.hex(),
            "purchase": "0x" + self.purchase_id.hex(),
            "units_bought": self.units_bought,
            "units_sold": self.units_sold,
            "paid_upstream": self.paid_upstream,
            "received_downstream": self.received_downstream,
            "commission_per_unit": self.commission,
            "margin": self.margin,
            "balanced": self.balanced,
        }


class Resale:
    """A reseller's offer backed by purchases from `source`; see the module docstring.

    Each purchase runs on a free open channel with the source's seller or, with
    `purchase_deposit`, on a new one funded with it; `endpoint` is the source's wire
    when this node is not connected to it. `purchase_budget` caps each purchase
    (0: no limit)."""

    def __init__(
        self,
        sessions: SessionManager,
        source: Offer,
        *,
        commission: int,
        meter: SupplyFactory,
        purchase_budget: int = 0,
        purchase_deposit: int = 0,
        endpoint: str | None = None,
    ) -> None:
        if commission < 0:
            raise ValueError("the commission cannot be negative")
        if purchase_budget < 0 or purchase_deposit < 0:
            raise ValueError("the purchase budget and deposit cannot be negative")
        self.sessions = sessions
        self.source = source
        self.commission = commission
        self._meter = meter
        self._purchase_budget = purchase_budget
        self._purchase_deposit = purchase_deposit
        self._endpoint = endpoint
        self._purchase_of: dict[bytes, bytes] = {}
        self._sale_of: dict[bytes, bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.offer: Offer | None = None

    def publish(self, *, window: int | None = None, batch: int | None = None) -> Offer:
        """Offer the source's service on at its price plus the commission."""
        source = self.source
        self.offer = self.sessions.publish(
            new_offer(
                self.sessions.node.address,
                source.kind,
                source.unit,
                source.price + self.commission,
                source.asset,
                window=window or source.window,
                batch=batch or source.batch,
                leader=source.leader,
            ),
            self._relay_for,
        )
        self.sessions.add_listener(self._on_event)
        return self.offer

    async def close(self) -> None:
        """Sell no more, and stop linking: purchases being started are cancelled and
        later stops are not relayed (running sessions end by their own rules)."""
        self._closed = True
        if self.offer is not None:
            self.sessions.withdraw(self.offer.offer_id)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def purchase_of(self, sale_id: bytes) -> bytes | None:
        return self._purchase_of.get(sale_id)

    def sales(self) -> list[bytes]:
        """The sales with a purchase behind them, oldest first: what `reconcile` takes."""
        return list(self._purchase_of)

    def reconcile(self, sale_id: bytes) -> Reconciliation:
        purchase_id = self._purchase_of.get(sale_id)
        if purchase_id is None:
            raise KeyError(f"no purchase behind sale 0x{sale_id.hex()}")
        sale = self.sessions.session(sale_id)
        purchase = self.sessions.session(purchase_id)
        return Reconciliation(
            sale_id,
            purchase_id,
            purchase.forward.units,
            sale.forward.units,
            purchase.forward.paid,
            sale.forward.paid,
            self.commission,
        )

    # -- the link

    def _relay_for(self, request: SupplyRequest) -> Supply:
        relay = self._meter(request)
        task = asyncio.ensure_future(self._buy(request.session_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return relay

    async def _buy(self, sale_id: bytes) -> None:
        node, seller = self.sessions.node, self.source.seller
        try:
            if self._endpoint is not None and not node.is_connected(seller):
                await node.connect(self._endpoint, seller)
            purchase = await self.sessions.start_session(
                self.source,
                budget=self._purchase_budget,
                deposit=self._purchase_deposit,
                endpoint=self._endpoint,
            )
        except (M2MPayError, TimeoutError) as exc:
            log.warning("no supply upstream for sale 0x%s: %s", sale_id.hex(), exc)
            await self._stop(sale_id, f"no supply upstream: {exc}")
            return
        self._purchase_of[sale_id] = purchase.session_id
        self._sale_of[purchase.session_id] = sale_id
        if self.sessions.session(sale_id).phase is not SessionPhase.ACTIVE:
            await self._stop(purchase.session_id, "the sale ended")

    def _on_event(self, event: SessionEvent, info: SessionInfo) -> None:
        if self._closed or not isinstance(event, SessionStopped):
            return
        purchase = self._purchase_of.get(info.session_id)
        if purchase is not None:
            self._spawn_stop(purchase, "the sale ended")
        sale = self._sale_of.get(info.session_id)
        if sale is not None:
            self._spawn_stop(sale, "no supply upstream")

    def _spawn_stop(self, session_id: bytes, reason: str) -> None:
        task = asyncio.ensure_future(self._stop(session_id, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop(self, session_id: bytes, reason: str) -> None:
        if self.sessions.session(session_id).phase in (SessionPhase.ACTIVE, SessionPhase.REQUESTED):
            try:
                await self.sessions.stop_session(session_id, reason, wait=False)
            except M2MPayError as exc:
                log.warning("could not stop session 0x%s: %s", session_id.hex(), exc)
