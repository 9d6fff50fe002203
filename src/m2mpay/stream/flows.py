"""Units and money in one direction of a session: delivery permits, meter readings,
reports, payments, prices and reversal. Pure functions of the session state.

Each side holds the other to the credit window: a deliverer delivers only while
what it is owed stays within the window (or, payer first, within what was paid);
a payer pays only for reported units, and refuses a report that claims more than
the window allows; a deliverer refuses payments beyond what the window allows.

Around a price change the two sides briefly know different prices, so each extends
credit (or prepays) at the price in force but holds the other to the window at the
highest price in play (`SessionState.window_allowed`): units permitted just before a
change were permitted at the price the deliverer knew then.
"""

from __future__ import annotations

from dataclasses import replace

from m2mpay.stream.messages import DeliveryReport, PriceAnswer, PriceChange, SessionReverse
from m2mpay.stream.outputs import (
    Allow,
    PayUpTo,
    PriceAgreed,
    Reversed,
    SendSession,
    SessionCode,
    SessionNotify,
    SessionOutput,
)
from m2mpay.stream.state import SessionPhase, SessionState

__all__ = [
    "Outputs",
    "allowance",
    "on_channel_totals",
    "on_meter",
    "on_price_answer",
    "on_price_change",
    "on_report",
    "on_reverse",
    "paid_ahead",
    "propose_price",
    "refresh_allowances",
    "units_left",
]

Outputs = tuple[SessionOutput, ...]
Problem = tuple[SessionCode, str]


def allowance(state: SessionState, reversed_flow: bool) -> int:
    """How far the deliverer's meter may go in a direction right now."""
    flow = state.flow(reversed_flow)
    if state.phase is not SessionPhase.ACTIVE or state.reversed != reversed_flow:
        return flow.units
    credit = state.window_value(reversed_flow) if state.leader_delivers() else 0
    room = max(0, flow.paid + credit - flow.value)
    allowed = flow.units + state.units_for(reversed_flow, flow.units, room)
    if not reversed_flow:
        if state.offer.max_units:
            allowed = min(allowed, state.offer.max_units)
        if state.target_units:
            allowed = min(allowed, state.target_units)
        if state.budget:
            allowed = min(allowed, flow.units + state.affordable(flow.value))
        if state.proposed_price:
            allowed = min(allowed, state.proposed_from - 1)
    return max(allowed, flow.units)


def refresh_allowances(state: SessionState) -> tuple[SessionState, Outputs]:
    """Recompute the permits of the flows we deliver; emit the ones that changed."""
    outputs: list[SessionOutput] = []
    for reversed_flow in (False, True):
        if not state.delivers(reversed_flow):
            continue
        flow = state.flow(reversed_flow)
        allowed = allowance(state, reversed_flow)
        if allowed != flow.allowed:
            state = state.with_flow(reversed_flow, replace(flow, allowed=allowed))
            outputs.append(Allow(state.session_id, reversed_flow, allowed))
    return state, tuple(outputs)


def report(
    state: SessionState, reversed_flow: bool, *, final: bool
) -> tuple[SessionState, Outputs]:
    """Tell the payer what we delivered in a direction."""
    flow = state.flow(reversed_flow)
    message = DeliveryReport(state.session_id, reversed_flow, flow.units, flow.value, final)
    flow = replace(flow, reported=flow.units, final=final or flow.final)
    return state.with_flow(reversed_flow, flow), (SendSession(state.peer, message),)


def on_meter(
    state: SessionState, reversed_flow: bool, units: int
) -> tuple[SessionState, Outputs, str | None]:
    """A meter reading; returns the new state, outputs and a stop reason if one applies."""
    flow = state.flow(reversed_flow)
    if units <= flow.units:
        return state, (), None
    value = flow.value + state.value_of(reversed_flow, flow.units, units)
    flow = replace(flow, units=units, value=value)
    state = state.with_flow(reversed_flow, flow)
    outputs: tuple[SessionOutput, ...] = ()
    if units - flow.reported >= state.offer.batch:
        state, sent = report(state, reversed_flow, final=False)
        outputs += sent
    stop = None
    if not reversed_flow:
        if state.target_units and units >= state.target_units:
            stop = "target reached"
        elif state.offer.max_units and units >= state.offer.max_units:
            stop = "maximum units delivered"
        elif state.affordable(value) == 0:
            stop = "budget exhausted"
    state, permits = refresh_allowances(state)
    return state, outputs + permits, stop


def on_report(
    state: SessionState, message: DeliveryReport
) -> tuple[SessionState, Outputs, Problem | None, str | None]:
    """A deliverer's report reaches the payer: check it against prices and window, then pay.

    Returns (state, outputs, a problem that makes us stop, a normal stop reason).
    """
    reversed_flow = message.reversed
    flow = state.flow(reversed_flow)
    if message.units < flow.units or message.value < flow.value:
        return state, (), (SessionCode.REPORT_MISMATCH, "a report went backwards"), None
    expected = flow.value + state.value_of(reversed_flow, flow.units, message.units)
    if message.value != expected:
        return (
            state,
            (),
            (
                SessionCode.REPORT_MISMATCH,
                f"value {message.value} for these units, expected {expected}",
            ),
            None,
        )
    window = state.window_allowed(reversed_flow)
    limit = flow.paid + (window if state.leader_delivers() else 0)
    if message.value > limit:
        return (
            state,
            (),
            (
                SessionCode.REPORT_BEYOND_WINDOW,
                f"reported {message.value}, beyond the {limit} paid plus the window",
            ),
            None,
        )
    due = message.value
    if not state.leader_delivers() and not message.final and state.phase is SessionPhase.ACTIVE:
        due = paid_ahead(state, reversed_flow, message.units, message.value)
    stop = None
    if not reversed_flow and state.budget:
        # Pay no more than the budget buys; stop once it buys nothing more.
        due = min(due, state.budget_cap(message.value))
        if state.affordable(message.value) == 0:
            stop = "budget exhausted"
    flow = replace(
        flow, units=message.units, value=message.value, final=flow.final or message.final
    )
    outputs: tuple[SessionOutput, ...] = ()
    if due > flow.paid:
        flow = replace(flow, paid=due)
        outputs = (PayUpTo(state.session_id, state.channel_id, reversed_flow, due),)
    state = state.with_flow(reversed_flow, flow)
    if not reversed_flow and state.target_units and message.units >= state.target_units:
        stop = stop or "target reached"
    return state, outputs, None, stop


def paid_ahead(state: SessionState, reversed_flow: bool, units: int, value: int) -> int:
    """What a payer that goes first pays once `units` (worth `value`) were delivered: one
    window ahead, each unit at its own price, but never past the units wanted."""
    ahead = state.offer.window
    remaining = units_left(state, reversed_flow, units)
    if remaining is not None:
        ahead = min(ahead, remaining)
    return value + state.value_of(reversed_flow, units, units + ahead)


def units_left(state: SessionState, reversed_flow: bool, units: int) -> int | None:
    """Units still wanted in a direction (the target or the offer's maximum), if bounded."""
    if reversed_flow:
        return None
    bounds = [b for b in (state.target_units, state.offer.max_units) if b]
    return max(0, min(bounds) - units) if bounds else None


def on_channel_totals(
    state: SessionState, sent_total: int, received_total: int
) -> tuple[SessionState, Outputs, Problem | None]:
    """Our node's channel totals: payments seen for flows we deliver, and a catch-up
    of our own payments that a crash interrupted for flows we pay."""
    outputs: list[SessionOutput] = []
    problem: Problem | None = None
    for reversed_flow in (False, True):
        flow = state.flow(reversed_flow)
        payer_base = state.seller_base if reversed_flow else state.buyer_base
        if state.delivers(reversed_flow):
            paid = max(0, received_total - payer_base)
            if paid == flow.paid:
                continue
            credit = 0 if state.leader_delivers() else state.window_allowed(reversed_flow)
            if paid > flow.value + credit and problem is None:
                problem = (
                    SessionCode.PAYMENT_BEYOND_WINDOW,
                    f"paid {paid} for {flow.value} delivered and a window of {credit}",
                )
            state = state.with_flow(reversed_flow, replace(flow, paid=paid))
        elif sent_total - payer_base < flow.paid:
            outputs.append(PayUpTo(state.session_id, state.channel_id, reversed_flow, flow.paid))
    state, permits = refresh_allowances(state)
    return state, (*outputs, *permits), problem


def propose_price(state: SessionState, price: int) -> tuple[SessionState, Outputs]:
    """The seller moves its price for every unit it has not yet permitted.

    Prices are kept as one boundary (the previous price before `price_from`, the price
    from it on): while the buyer has not yet been told of units up to the last agreed
    boundary, a second one would reprice the units before it, so none is proposed."""
    if price == state.price or state.proposed_price:
        return state, ()
    if state.forward.reported < state.price_from - 1:
        return state, ()
    from_unit = state.forward.allowed + 1
    state = state.evolve(proposed_price=price, proposed_from=from_unit)
    return state, (SendSession(state.peer, PriceChange(state.session_id, price, from_unit)),)


def on_price_change(
    state: SessionState, message: PriceChange
) -> tuple[SessionState, Outputs, Problem | None, str | None]:
    if (message.price, message.from_unit) == (state.price, state.price_from):
        # Said again by a seller that has not yet heard our answer: agreed already, so
        # answer again. Taken in again, it would make the new price the previous one too
        # and reprice the units before its boundary (or, those units delivered, stop).
        answer = PriceAnswer(state.session_id, message.from_unit, True)
        return state, (SendSession(state.peer, answer),), None, None
    if message.from_unit <= state.forward.units:
        return (
            state,
            (),
            (
                SessionCode.PRICE_IN_THE_PAST,
                f"unit {message.from_unit} was already delivered ({state.forward.units} so far)",
            ),
            None,
        )
    if message.price > state.limit_price:
        answer = PriceAnswer(state.session_id, message.from_unit, False)
        return state, (SendSession(state.peer, answer),), None, "price above our limit"
    state = state.evolve(
        previous_price=state.price, price=message.price, price_from=message.from_unit
    )
    answer = PriceAnswer(state.session_id, message.from_unit, True)
    event = PriceAgreed(state.session_id, message.price, message.from_unit)
    return state, (SendSession(state.peer, answer), SessionNotify(event)), None, None


def on_price_answer(
    state: SessionState, message: PriceAnswer
) -> tuple[SessionState, Outputs, str | None]:
    if not state.proposed_price or message.from_unit != state.proposed_from:
        return state, (), None
    if not message.accepted:
        return state.evolve(proposed_price=0, proposed_from=0), (), "the buyer refused the price"
    price, from_unit = state.proposed_price, state.proposed_from
    state = state.evolve(
        previous_price=state.price,
        price=price,
        price_from=from_unit,
        proposed_price=0,
        proposed_from=0,
    )
    state, permits = refresh_allowances(state)
    return state, (SessionNotify(PriceAgreed(state.session_id, price, from_unit)), *permits), None


def on_reverse(
    state: SessionState, reversed_now: bool, *, tell_peer: bool
) -> tuple[SessionState, Outputs]:
    """Switch the direction of supply; the flow that stops is reported so it gets paid."""
    if reversed_now == state.reversed:
        return state, ()
    outputs: list[SessionOutput] = []
    stopping_flow = state.reversed
    state = state.evolve(reversed=reversed_now)
    if state.delivers(stopping_flow) and state.flow(stopping_flow).units:
        state, sent = report(state, stopping_flow, final=False)
        outputs += sent
    if tell_peer:
        outputs.append(SendSession(state.peer, SessionReverse(state.session_id, reversed_now)))
    if not state.delivers(reversed_now) and not state.leader_delivers():
        flow = state.flow(reversed_now)
        prepaid = paid_ahead(state, reversed_now, flow.units, flow.value)
        if prepaid > flow.paid:
            state = state.with_flow(reversed_now, replace(flow, paid=prepaid))
            outputs.append(PayUpTo(state.session_id, state.channel_id, reversed_now, prepaid))
    state, permits = refresh_allowances(state)
    outputs += permits
    outputs.append(SessionNotify(Reversed(state.session_id, reversed_now)))
    return state, tuple(outputs)
