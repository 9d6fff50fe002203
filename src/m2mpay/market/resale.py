"""Linked sessions along a value chain: a reseller (a charger) buys from a source
(a wind turbine) exactly what it sells to its buyer (a car), at its source's price
plus a commission per unit, and stops buying when its sale stops.

Each sale gets its own purchase, started when the sale starts and stopped when it
stops (and the other way round: no supply upstream ends the sale). What flows is
metered once on each side of the reseller: the source's meter bills the purchase,
the reseller's own `meter` bills the sale, and nothing is stored in between (a cable
in the field; `RelayMeter` on a `PowerLine` in the simulation), so the two agree to
the unit and the reseller's margin is its commission on every unit.

The link is durable: a purchase names the sale it supplies in its own `StartSession`,
logged before its request leaves. A reseller that restarts publishes its offer again
(`publish(offer=...)`), reads the links back from its sessions and settles what
changed while it was down: a sale that ended stops its purchase, a purchase that
ended stops its sale, and a sale still running without a purchase buys one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final

from m2mpay.errors import M2MPayError, StreamError
from m2mpay.lifecycle import cancel_all, run_in_background
from m2mpay.stream.info import SessionInfo
from m2mpay.stream.manager import SessionManager
from m2mpay.stream.offer import Offer, new_offer
from m2mpay.stream.outputs import SessionEvent, SessionStopped
from m2mpay.stream.state import SessionPhase
from m2mpay.stream.supply import Supply, SupplyFactory, SupplyRequest

__all__ = ["Reconciliation", "Resale"]

log = logging.getLogger("m2mpay.market.resale")

_LIVE: Final = frozenset({SessionPhase.REQUESTED, SessionPhase.ACTIVE})


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
        self.meter = meter
        self._purchase_budget = purchase_budget
        self._purchase_deposit = purchase_deposit
        self._endpoint = endpoint
        self._purchase_of: dict[bytes, bytes] = {}
        self._sale_of: dict[bytes, bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.offer: Offer | None = None

    def publish(
        self,
        *,
        window: int | None = None,
        batch: int | None = None,
        offer: Offer | None = None,
    ) -> Offer:
        """Offer the source's service on at its price plus the commission; or, after a
        restart, publish `offer` again and take its sales up where they were."""
        source = self.source
        if offer is None:
            offer = new_offer(
                self.sessions.node.address,
                source.kind,
                source.unit,
                source.price + self.commission,
                source.asset,
                window=window or source.window,
                batch=batch or source.batch,
                leader=source.leader,
            )
        self.offer = offer
        # Before the manager resumes the sales (it calls `_relay_for` for each), so
        # that a sale with a purchase behind it does not buy a second one.
        self._relink(offer.offer_id)
        self.sessions.publish(offer, self._relay_for)
        self.sessions.add_listener(self._on_event)
        for sale_id, purchase_id in list(self._purchase_of.items()):
            self._settle(sale_id, purchase_id)
        return offer

    async def close(self) -> None:
        """Sell no more, and stop linking: purchases being started are cancelled and
        later stops are not relayed (running sessions end by their own rules)."""
        self._closed = True
        if self.offer is not None:
            self.sessions.withdraw(self.offer.offer_id)
        await cancel_all(self._tasks)

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

    def _relink(self, offer_id: bytes) -> None:
        """Read back from the sessions which purchase supplies which sale of `offer_id`."""
        for info in self.sessions.sessions():
            sale_id = info.supplies
            if sale_id is None:
                continue
            try:
                sale = self.sessions.session(sale_id)
            except StreamError:
                continue
            if sale.we_sell and sale.offer.offer_id == offer_id:
                self._link(sale_id, info.session_id)

    def _link(self, sale_id: bytes, purchase_id: bytes) -> None:
        self._purchase_of[sale_id] = purchase_id
        self._sale_of[purchase_id] = sale_id

    def _settle(self, sale_id: bytes, purchase_id: bytes) -> None:
        """End whichever side runs on while the other has ended (after a restart)."""
        sale, purchase = self.sessions.session(sale_id), self.sessions.session(purchase_id)
        if sale.phase not in _LIVE and purchase.phase in _LIVE:
            self._spawn_stop(purchase_id, "the sale ended")
        elif purchase.phase not in _LIVE and sale.phase in _LIVE:
            self._spawn_stop(sale_id, "no supply upstream")

    def _relay_for(self, request: SupplyRequest) -> Supply:
        relay = self.meter(request)
        if request.session_id not in self._purchase_of:  # resumed sales have theirs
            self._spawn(self._buy(request.session_id))
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
                supplies=sale_id,
            )
        except (M2MPayError, TimeoutError) as exc:
            log.warning("no supply upstream for sale 0x%s: %s", sale_id.hex(), exc)
            await self._stop(sale_id, f"no supply upstream: {exc}")
            # A request that went out but was not answered in time may still start.
            for info in self.sessions.sessions():
                if info.supplies == sale_id:
                    self._link(sale_id, info.session_id)
                    await self._stop(info.session_id, "the sale ended")
            return
        self._link(sale_id, purchase.session_id)
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
        self._spawn(self._stop(session_id, reason))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        run_in_background(self._tasks, work)

    async def _stop(self, session_id: bytes, reason: str) -> None:
        if self.sessions.session(session_id).phase in _LIVE:
            try:
                await self.sessions.stop_session(session_id, reason, wait=False)
            except M2MPayError as exc:
                log.warning("could not stop session 0x%s: %s", session_id.hex(), exc)
