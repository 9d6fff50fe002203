"""A metered session's state, its lifecycle table, and the exposure arithmetic."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, Final

from m2mpay.channel.evolve import make_evolve
from m2mpay.channel.state import refuse_move
from m2mpay.crypto import Address
from m2mpay.plain import Blob, Bytes32, Text, Uint64, Uint256, plain_type
from m2mpay.stream.messages import FlowTotals, SignedReceipt
from m2mpay.stream.offer import Leader, Offer

__all__ = ["SESSION_TRANSITIONS", "Flow", "SessionPhase", "SessionState"]


class SessionPhase(enum.Enum):
    REQUESTED = "requested"  # the buyer asked; no answer yet
    ACTIVE = "active"  # units and payments flow
    STOPPING = "stopping"  # stopped; final reports, payments and receipts under way
    STOPPED = "stopped"  # final: receipts signed (by both, or by us after a silence)
    REJECTED = "rejected"  # the seller refused (final)


SESSION_TRANSITIONS: Final[dict[SessionPhase, frozenset[SessionPhase]]] = {
    # A buyer that stops before any answer still waits: the seller may have started.
    SessionPhase.REQUESTED: frozenset(
        {SessionPhase.ACTIVE, SessionPhase.REJECTED, SessionPhase.STOPPING}
    ),
    SessionPhase.ACTIVE: frozenset({SessionPhase.STOPPING}),
    SessionPhase.STOPPING: frozenset({SessionPhase.STOPPED}),
    SessionPhase.STOPPED: frozenset(),
    SessionPhase.REJECTED: frozenset(),
}


@plain_type("session.flow")
@dataclass(frozen=True, slots=True)
class Flow:
    """One direction of supply. The deliverer meters `units`; the payer learns them from
    reports. `paid` is, for the payer, what it committed to pay and, for the deliverer,
    what it has seen arrive in the channel."""

    units: Uint64 = 0
    value: Uint256 = 0
    paid: Uint256 = 0
    allowed: Uint64 = 0  # deliverer: how far its meter may go
    reported: Uint64 = 0  # deliverer: units covered by its last report
    final: bool = False  # the deliverer's final report is sent (or received)

    def totals(self) -> FlowTotals:
        return FlowTotals(self.units, self.value, self.paid)


@plain_type("session.state")
@dataclass(frozen=True, slots=True)
class SessionState:
    """Everything one party knows about one session.

    The forward flow is the offer's: the seller delivers, the buyer pays `price`
    per unit. The backward flow runs when the session is reversed: the buyer
    delivers and the seller pays `offer.reverse_price`.
    """

    session_id: Bytes32
    offer: Offer
    we_sell: bool
    peer: Address
    channel_id: Bytes32
    phase: SessionPhase
    price: Uint256  # forward price in force for units from `price_from` on
    price_from: Uint64
    previous_price: Uint256  # for units before `price_from`
    limit_price: Uint256
    budget: Uint256  # the most the buyer pays for the forward flow (0: no limit)
    target_units: Uint64  # stop once this many units were delivered (0: no target)
    allow_reverse: bool
    buyer_base: Uint256  # the buyer's channel total paid to the seller at the start
    seller_base: Uint256  # the seller's channel total paid to the buyer at the start
    started_ms: Uint64
    heard_ms: Uint64
    forward: Flow = Flow()
    backward: Flow = Flow()
    reversed: bool = False
    proposed_price: Uint256 = 0  # seller: a price change awaiting the buyer's answer
    proposed_from: Uint64 = 0
    stopped_ms: Uint64 = 0  # when the session stopped, as the party that stopped it says
    stop_seen_ms: Uint64 = 0  # when we learned it (for the receipt timeout)
    stop_reason: Text = ""
    resent_ms: Uint64 = 0  # when we last said our part again to a peer that went quiet
    my_receipt: SignedReceipt | None = None
    peer_receipt: SignedReceipt | None = None
    supplies: Bytes32 | None = None  # a purchase: the sale of ours it supplies
    supply_terms: Blob = b""  # what the buyer told the seller's device (`SessionRequest`)

    # -- who does what

    def delivers(self, reversed_flow: bool) -> bool:
        """Whether we deliver the flow: forward if we sell, backward if we buy."""
        return self.we_sell != reversed_flow

    def flow(self, reversed_flow: bool) -> Flow:
        return self.backward if reversed_flow else self.forward

    def unit_price(self, reversed_flow: bool) -> int:
        return self.offer.reverse_price if reversed_flow else self.price

    def leader_delivers(self) -> bool:
        return self.offer.leader is Leader.DELIVERER

    def window_value(self, reversed_flow: bool) -> int:
        """The window at the price in force: the credit a deliverer that goes first extends."""
        return self.offer.window * self.unit_price(reversed_flow)

    def window_allowed(self, reversed_flow: bool) -> int:
        """The window we hold the peer to: at the highest price in play (the previous one,
        the one in force, one we proposed), since units on credit or prepaid just before
        a change were counted at the price the peer knew then."""
        if reversed_flow:
            return self.window_value(reversed_flow)
        highest = max(self.previous_price, self.price, self.proposed_price)
        return self.offer.window * highest

    def value_of(self, reversed_flow: bool, units_from: int, units_to: int) -> int:
        """The value of units `units_from`+1 .. `units_to` at the prices that apply to them."""
        if reversed_flow:
            return (units_to - units_from) * self.offer.reverse_price
        boundary = self.price_from - 1  # units up to here are at the previous price
        old = max(0, min(units_to, boundary) - units_from)
        return old * self.previous_price + (units_to - units_from - old) * self.price

    def units_for(self, reversed_flow: bool, units_from: int, amount: int) -> int:
        """How many whole units after `units_from` `amount` pays for, at their prices."""
        if reversed_flow:
            return amount // self.offer.reverse_price if self.offer.reverse_price else 0
        before = max(0, self.price_from - 1 - units_from)  # units at the previous price
        if amount < before * self.previous_price:
            return amount // self.previous_price
        return before + (amount - before * self.previous_price) // self.price

    def affordable(self, value: int) -> int:
        """Of the forward flow, the most the budget pays for in whole units, given `value`
        already delivered: a budget that is not a multiple of the price leaves a rest."""
        if not self.budget:
            return -1  # no limit
        return max(0, self.budget - value) // self.price

    def budget_cap(self, value: int) -> int:
        """The most the buyer pays in all once `value` is delivered (whole units only)."""
        return value + self.affordable(value) * self.price

    def receipt_totals(self) -> tuple[FlowTotals, FlowTotals]:
        return self.forward.totals(), self.backward.totals()

    # -- exposure, in units of the flow's price

    def exposure_units(self, reversed_flow: bool) -> tuple[int, int]:
        """(delivered and unpaid, paid and undelivered) in whole units, for a flow."""
        flow = self.flow(reversed_flow)
        price = self.unit_price(reversed_flow) or 1
        unpaid = max(0, flow.value - flow.paid)
        prepaid = max(0, flow.paid - flow.value)
        return -(-unpaid // price), -(-prepaid // price)

    # -- lifecycle

    def moved_to(self, phase: SessionPhase) -> SessionState:
        if phase is self.phase:
            return self
        refuse_move("session", self.phase, phase, SESSION_TRANSITIONS)
        return replace(self, phase=phase)

    def evolve(self, **changes: Any) -> SessionState:
        return _evolve(self, **changes)

    def with_flow(self, reversed_flow: bool, flow: Flow) -> SessionState:
        return self.evolve(backward=flow) if reversed_flow else self.evolve(forward=flow)


_evolve = make_evolve(SessionState)
