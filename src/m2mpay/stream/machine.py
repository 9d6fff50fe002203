"""The metered-session protocol as a pure state machine:
`transition(ctx, state, input) -> (state, outputs)`.

A buyer asks for a session on a seller's offer over a channel they share; units
flow one way and payments the other, each side holding the other to the credit
window (see `m2mpay.stream.flows`). A session stops by a rule (budget, target,
maximum, silence, a refused price) or by either party; then each side reports
and pays what is final and both sign the same receipt. A refused input changes
nothing and tells the peer why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from m2mpay.stream.context import (
    LIVE,
    Result,
    SessionConfig,
    SessionContext,
    heard,
    refuse,
    refuse_peer,
)
from m2mpay.stream.ending import (
    end_unstarted,
    never_started,
    pay_failed,
    receipt,
    stop_for_problem,
    stop_if,
    stop_local,
    stop_message,
    tick,
    try_receipt,
)
from m2mpay.stream.extending import extend_local, extend_message
from m2mpay.stream.flows import (
    Outputs,
    on_channel_totals,
    on_meter,
    on_price_answer,
    on_price_change,
    on_report,
    on_reverse,
    propose_price,
    refresh_allowances,
)
from m2mpay.stream.inputs import (
    ChannelTotals,
    ExtendSession,
    MeterReading,
    PayFailed,
    RequestReceived,
    Reverse,
    SessionInput,
    SessionReceived,
    SessionTick,
    SetPrice,
    StartSession,
    StopSession,
)
from m2mpay.stream.messages import (
    DeliveryReport,
    PriceAnswer,
    PriceChange,
    SessionAccepted,
    SessionError,
    SessionExtend,
    SessionRejected,
    SessionReverse,
    SessionStop,
    SignedReceipt,
)
from m2mpay.stream.outputs import (
    SendSession,
    SessionCode,
    SessionRefused,
)
from m2mpay.stream.reconcile import totals_after_stop
from m2mpay.stream.starting import accepted, activate, rejected, request, start
from m2mpay.stream.state import SessionPhase, SessionState

__all__ = ["SessionConfig", "SessionContext", "is_session_refusal", "session_key", "transition"]


def session_key(inp: SessionInput) -> bytes | None:
    if isinstance(inp, RequestReceived):
        return inp.request.session_id
    if isinstance(inp, SessionReceived):
        return inp.message.session_id
    return inp.session_id


def is_session_refusal(
    before: SessionState | None, after: SessionState | None, outputs: Outputs
) -> bool:
    """Nothing changed and the only outputs say so (to us, and to the peer)."""
    if after is not before or not outputs:
        return False
    return any(isinstance(o, SessionRefused) for o in outputs) and all(
        isinstance(o, SessionRefused)
        or (isinstance(o, SendSession) and isinstance(o.message, SessionError | SessionRejected))
        for o in outputs
    )


def transition(ctx: SessionContext, state: SessionState | None, inp: SessionInput) -> Result:
    if isinstance(inp, SessionReceived):
        handler = _MESSAGE_HANDLERS.get(type(inp.message))
        if handler is None:
            return state, (SessionRefused(SessionCode.INVALID_PHASE, "not a session message"),)
        if state is None:
            return refuse_peer(
                state,
                inp.sender,
                inp.message.session_id,
                SessionCode.UNKNOWN_SESSION,
                "no such session",
            )
        if inp.sender != state.peer:
            return refuse_peer(
                state,
                inp.sender,
                state.session_id,
                SessionCode.NOT_A_PARTY,
                "not our peer in this session",
            )
        return handler(ctx, state, inp)
    return _INPUT_HANDLERS[type(inp)](ctx, state, inp)


# -- running


def _meter(ctx: SessionContext, state: SessionState | None, inp: MeterReading) -> Result:
    if state is None:
        return refuse(state, SessionCode.UNKNOWN_SESSION, "no such session", inp.session_id)
    if not state.delivers(inp.reversed) or state.phase is not SessionPhase.ACTIVE:
        return state, ()
    new, outputs, reason = on_meter(state, inp.reversed, inp.units)
    return stop_if(ctx, new, outputs, reason, inp.now_ms)


def _report(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, DeliveryReport)
    started: Outputs = ()
    if state.phase is SessionPhase.REQUESTED and not state.we_sell and not message.reversed:
        # The seller delivers, so it accepted; its acceptance was lost on the way.
        state, started = activate(state)
    if state.phase is SessionPhase.STOPPED and not state.delivers(message.reversed):
        return state, ()  # a repeat from a peer that has not yet seen our receipt
    if state.delivers(message.reversed) or state.phase not in LIVE:
        return refuse_peer(
            state,
            inp.sender,
            state.session_id,
            SessionCode.INVALID_PHASE,
            "we do not pay for that direction",
        )
    state = heard(state, inp.now_ms)
    new, outputs, problem, reason = on_report(state, message)
    if problem is not None:
        new, outputs = stop_for_problem(ctx, state, problem, inp.now_ms)
        return new, started + outputs
    new, outputs = stop_if(ctx, new, outputs, reason, inp.now_ms)
    new, receipts = try_receipt(ctx, new)
    return new, started + outputs + receipts


def _channel_totals(ctx: SessionContext, state: SessionState | None, inp: ChannelTotals) -> Result:
    if state is not None and state.phase is SessionPhase.STOPPED:
        return totals_after_stop(state, inp), ()
    if state is None or state.phase not in LIVE:
        return state, ()
    new, outputs, problem = on_channel_totals(state, inp.sent_total, inp.received_total)
    if problem is not None:
        return stop_for_problem(ctx, state, problem, inp.now_ms)
    if new is not state:
        new = heard(new, inp.now_ms)
    new, receipts = try_receipt(ctx, new)
    return new, outputs + receipts


def _set_price(ctx: SessionContext, state: SessionState | None, inp: SetPrice) -> Result:
    if state is None:
        return refuse(state, SessionCode.UNKNOWN_SESSION, "no such session", inp.session_id)
    if not state.we_sell or state.phase is not SessionPhase.ACTIVE:
        return refuse(
            state, SessionCode.INVALID_PHASE, "not a running session we sell", inp.session_id
        )
    if inp.price <= 0:
        return refuse(state, SessionCode.INVALID_OFFER, "price must be positive", inp.session_id)
    new, outputs = propose_price(state, inp.price)
    new, permits = refresh_allowances(new)
    return new, outputs + permits


def _price_change(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, PriceChange)
    if state.we_sell or state.phase is not SessionPhase.ACTIVE:
        return refuse_peer(
            state,
            inp.sender,
            state.session_id,
            SessionCode.INVALID_PHASE,
            "no running session to reprice",
        )
    state = heard(state, inp.now_ms)
    new, outputs, problem, reason = on_price_change(state, message)
    if problem is not None:
        return stop_for_problem(ctx, state, problem, inp.now_ms)
    return stop_if(ctx, new, outputs, reason, inp.now_ms)


def _price_answer(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, PriceAnswer)
    if not state.we_sell or state.phase is not SessionPhase.ACTIVE:
        return state, ()
    new, outputs, reason = on_price_answer(heard(state, inp.now_ms), message)
    return stop_if(ctx, new, outputs, reason, inp.now_ms)


def _reverse_local(ctx: SessionContext, state: SessionState | None, inp: Reverse) -> Result:
    if state is None:
        return refuse(state, SessionCode.UNKNOWN_SESSION, "no such session", inp.session_id)
    if state.phase is not SessionPhase.ACTIVE:
        return refuse(state, SessionCode.INVALID_PHASE, "no running session", inp.session_id)
    if not state.allow_reverse:
        return refuse(
            state, SessionCode.REVERSE_NOT_AGREED, "reversal was not agreed", inp.session_id
        )
    return on_reverse(state, inp.reversed, tell_peer=True)


def _reverse_message(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, SessionReverse)
    if state.phase is not SessionPhase.ACTIVE:
        return state, ()
    if not state.allow_reverse:
        return refuse_peer(
            state,
            inp.sender,
            state.session_id,
            SessionCode.REVERSE_NOT_AGREED,
            "reversal was not agreed",
        )
    return on_reverse(heard(state, inp.now_ms), message.reversed, tell_peer=False)


def _peer_error(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, SessionError)
    if message.code == SessionCode.UNKNOWN_SESSION.value and never_started(state):
        return end_unstarted(state, "the seller never started the session")
    return state, (
        SessionRefused(
            SessionCode.INVALID_PHASE,
            f"peer reported {message.code}: {message.message}",
            state.session_id,
        ),
    )


_INPUT_HANDLERS: Final[dict[type[Any], Callable[..., Result]]] = {
    StartSession: start,
    RequestReceived: request,
    MeterReading: _meter,
    ChannelTotals: _channel_totals,
    SetPrice: _set_price,
    ExtendSession: extend_local,
    Reverse: _reverse_local,
    StopSession: stop_local,
    PayFailed: pay_failed,
    SessionTick: tick,
}

_MESSAGE_HANDLERS: Final[dict[type[Any], Callable[..., Result]]] = {
    SessionAccepted: accepted,
    SessionRejected: rejected,
    DeliveryReport: _report,
    PriceChange: _price_change,
    PriceAnswer: _price_answer,
    SessionReverse: _reverse_message,
    SessionExtend: extend_message,
    SessionStop: stop_message,
    SignedReceipt: receipt,
    SessionError: _peer_error,
}
