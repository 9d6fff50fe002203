"""Ending a session: stop rules, final reports and payments, and the receipt both sign."""

from __future__ import annotations

from dataclasses import replace

from m2mpay.stream.context import (
    LIVE,
    Result,
    SessionContext,
    Step,
    due_to_resend,
    heard,
    refuse,
)
from m2mpay.stream.flows import (
    Outputs,
    Problem,
    refresh_allowances,
    report,
)
from m2mpay.stream.inputs import (
    PayFailed,
    SessionReceived,
    SessionTick,
    StopSession,
)
from m2mpay.stream.messages import (
    PriceChange,
    SessionError,
    SessionRequest,
    SessionStop,
    SignedReceipt,
)
from m2mpay.stream.outputs import (
    SendSession,
    SessionCode,
    SessionRefused,
)
from m2mpay.stream.receipts import check_peer_receipt, sign_receipt, stopped_event, view_of
from m2mpay.stream.reconcile import receipt_after_stop, tick_after_stop
from m2mpay.stream.state import SessionPhase, SessionState

__all__ = [
    "end_unstarted",
    "is_final",
    "never_started",
    "pay_failed",
    "receipt",
    "session_request",
    "stop",
    "stop_for_problem",
    "stop_if",
    "stop_local",
    "stop_message",
    "tick",
    "try_receipt",
]


def stop(
    ctx: SessionContext,
    state: SessionState,
    reason: str,
    now_ms: int,
    *,
    tell_peer: bool,
    at_ms: int | None = None,
) -> Step:
    """Stop: freeze the meters, send final reports, and sign a receipt once final."""
    if state.phase not in (SessionPhase.ACTIVE, SessionPhase.REQUESTED):
        return state, ()
    stopped_at = at_ms if at_ms is not None else now_ms
    state = state.moved_to(SessionPhase.STOPPING).evolve(
        stop_reason=reason, stopped_ms=stopped_at, stop_seen_ms=now_ms, proposed_price=0
    )
    outputs: Outputs = ()
    if tell_peer:
        outputs += (SendSession(state.peer, SessionStop(state.session_id, reason, stopped_at)),)
    state, permits = refresh_allowances(state)
    outputs += permits
    for reversed_flow in (False, True):
        if state.delivers(reversed_flow):
            state, sent = report(state, reversed_flow, final=True)
            outputs += sent
    state, receipts = try_receipt(ctx, state)
    return state, outputs + receipts


def stop_if(
    ctx: SessionContext, state: SessionState, outputs: Outputs, reason: str | None, now_ms: int
) -> Step:
    """A step's result, stopped (and the peer told) if the step gave a reason to stop."""
    if not reason:
        return state, outputs
    state, stopped = stop(ctx, state, reason, now_ms, tell_peer=True)
    return state, outputs + stopped


def stop_for_problem(
    ctx: SessionContext, state: SessionState, problem: Problem, now_ms: int
) -> Step:
    code, message = problem
    new, outputs = stop(ctx, state, f"{code.value}: {message}", now_ms, tell_peer=True)
    error = SendSession(state.peer, SessionError(state.session_id, code.value, message))
    return new, (SessionRefused(code, message, state.session_id), error, *outputs)


def is_final(state: SessionState) -> bool:
    return state.forward.final and state.backward.final


def try_receipt(ctx: SessionContext, state: SessionState) -> Step:
    """Once both directions are final, sign our view; stop once the peer signed the same."""
    if state.phase is not SessionPhase.STOPPING or not is_final(state):
        return state, ()
    outputs: Outputs = ()
    mine = state.my_receipt
    if mine is None or view_of(mine) != view_of(state):
        mine = sign_receipt(ctx, state)
        state = state.evolve(my_receipt=mine)
        outputs += (SendSession(state.peer, mine),)
    theirs = state.peer_receipt
    if theirs is not None and view_of(theirs) == view_of(state):
        state = state.moved_to(SessionPhase.STOPPED)
        outputs += (stopped_event(state, countersigned=True),)
    return state, outputs


def stop_local(ctx: SessionContext, state: SessionState | None, inp: StopSession) -> Result:
    if state is None:
        return refuse(state, SessionCode.UNKNOWN_SESSION, "no such session", inp.session_id)
    return stop(ctx, state, inp.reason, inp.now_ms, tell_peer=True)


def stop_message(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, SessionStop)
    if state.phase is SessionPhase.STOPPED:
        # The peer repeats its stop: our receipt never reached it.
        if state.my_receipt is None:
            return state, ()
        return state, (SendSession(state.peer, state.my_receipt),)
    if state.phase is SessionPhase.STOPPING:
        # Both stopped at once, each at its own time: both settle on the earlier one.
        if message.at_ms >= state.stopped_ms:
            return state, ()
        return try_receipt(ctx, heard(state.evolve(stopped_ms=message.at_ms), inp.now_ms))
    return stop(
        ctx,
        heard(state, inp.now_ms),
        message.reason,
        inp.now_ms,
        tell_peer=False,
        at_ms=message.at_ms,
    )


def receipt(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, SignedReceipt)
    if state.phase is SessionPhase.STOPPED:
        return receipt_after_stop(ctx, state, inp)
    if state.phase is not SessionPhase.STOPPING:
        return state, ()
    refused = check_peer_receipt(ctx, state, inp)
    if refused is not None:
        return refused
    return try_receipt(ctx, heard(state.evolve(peer_receipt=message), inp.now_ms))


def pay_failed(ctx: SessionContext, state: SessionState | None, inp: PayFailed) -> Result:
    if state is None or state.phase not in LIVE:
        return state, ()
    paying = state.we_sell  # the flow we pay: backward if we sell, forward if we buy
    flow = state.flow(paying)
    base = state.seller_base if paying else state.buyer_base
    actual = max(0, inp.sent_total - base)
    state = state.with_flow(paying, replace(flow, paid=min(flow.paid, actual)))
    return stop(ctx, state, f"payment failed: {inp.reason}", inp.now_ms, tell_peer=True)


def tick(ctx: SessionContext, state: SessionState | None, inp: SessionTick) -> Result:
    if state is None:
        return state, ()
    if state.phase is SessionPhase.STOPPED:
        return tick_after_stop(ctx, state, inp)
    config = ctx.config
    now = inp.now_ms
    if state.phase in (SessionPhase.ACTIVE, SessionPhase.REQUESTED):
        if now - max(state.heard_ms, inp.peer_seen_ms) > config.silence_timeout_ms:
            return stop(ctx, state, "the peer fell silent", now, tell_peer=True)
        if state.phase is SessionPhase.ACTIVE:
            return _resend_while_stalled(ctx, state, now)
        return _resend_request(ctx, state, now)
    if state.phase is SessionPhase.STOPPING:
        if now - state.stop_seen_ms > config.receipt_timeout_ms:
            return _give_up_waiting(ctx, state)
        return _resend_ending(ctx, state, now)
    return state, ()


def _resend_request(ctx: SessionContext, state: SessionState, now: int) -> Step:
    """No answer yet: the request, or the seller's acceptance, may have been lost."""
    if not due_to_resend(ctx, state, state.heard_ms, now):
        return state, ()
    return state.evolve(resent_ms=now), (SendSession(state.peer, session_request(state)),)


def session_request(state: SessionState) -> SessionRequest:
    return SessionRequest(
        state.session_id,
        state.offer.offer_id,
        state.channel_id,
        state.limit_price,
        state.budget,
        state.target_units,
        state.allow_reverse,
        state.buyer_base,
        state.seller_base,
        state.started_ms,
        state.supply_terms,
    )


def never_started(state: SessionState) -> bool:
    """We asked, stopped, and the seller says it never ran the session: nothing is owed."""
    return (
        not state.we_sell
        and state.phase is SessionPhase.STOPPING
        and not state.forward.units
        and not state.forward.final
    )


def end_unstarted(state: SessionState, reason: str) -> Step:
    new = state.moved_to(SessionPhase.STOPPED).evolve(stop_reason=reason)
    return new, (stopped_event(new, countersigned=False),)


def _resend_while_stalled(ctx: SessionContext, state: SessionState, now: int) -> Step:
    """A deliverer whose permit ran out waits for money or a price answer; if the peer
    stays quiet, what it waits on may have been lost with a crash, so say it again."""
    if not due_to_resend(ctx, state, state.heard_ms, now):
        return state, ()
    outputs: Outputs = ()
    for reversed_flow in (False, True):
        flow = state.flow(reversed_flow)
        if state.delivers(reversed_flow) and 0 < flow.units >= flow.allowed:
            state, sent = report(state, reversed_flow, final=False)
            outputs += sent
    if state.we_sell and state.proposed_price:
        change = PriceChange(state.session_id, state.proposed_price, state.proposed_from)
        outputs += (SendSession(state.peer, change),)
    if not outputs:
        return state, ()
    return state.evolve(resent_ms=now), outputs


def _resend_ending(ctx: SessionContext, state: SessionState, now: int) -> Step:
    """Until the peer countersigns, repeat the stop, our final reports and our receipt."""
    if not due_to_resend(ctx, state, state.stop_seen_ms, now):
        return state, ()
    outputs: Outputs = (
        SendSession(state.peer, SessionStop(state.session_id, state.stop_reason, state.stopped_ms)),
    )
    for reversed_flow in (False, True):
        if state.delivers(reversed_flow) and state.flow(reversed_flow).final:
            state, sent = report(state, reversed_flow, final=True)
            outputs += sent
    if state.my_receipt is not None:
        outputs += (SendSession(state.peer, state.my_receipt),)
    return state.evolve(resent_ms=now), outputs


def _give_up_waiting(ctx: SessionContext, state: SessionState) -> Step:
    """Keep the last consistent view, signed by us; the peer never countersigned."""
    new = state
    if new.my_receipt is None:
        new = new.evolve(my_receipt=sign_receipt(ctx, new))
    new = new.moved_to(SessionPhase.STOPPED)
    return new, (stopped_event(new, countersigned=False),)
