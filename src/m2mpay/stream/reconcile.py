"""After a session ended on a silence: reconciling both sides' views into one receipt.

A side that waited for the peer's receipt longer than its receipt timeout keeps its
own signed view and stops (see `m2mpay.stream.ending`). The peer may have stopped the
same way, and the two views differ: a deliverer that metered within its permit while
the link was down reports units its payer never heard of; payments in flight at the
cut reach the payee only once the channel resyncs. Once the peer is back, each side
sends its stop and receipt again, and adopts from the other's receipt what it can
check but could not know:

- for a flow it pays: more units, at the session's prices, no further than what it
  paid plus the credit window; what was paid stays what it sent;
- for a flow it delivers: nothing; its own meter and the money it received are the
  truth, and the payer adopts them;
- the earlier of the two stop times.

A peer that is still stopping gets our final reports as well, and finishes as usual.
The reconciled view is signed again; when it equals the peer's receipt the session is
countersigned. A receipt beyond those bounds is refused and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace

from m2mpay.stream.context import Result, SessionContext, due_to_resend, heard, refuse_peer
from m2mpay.stream.flows import report
from m2mpay.stream.inputs import ChannelTotals, SessionReceived, SessionTick
from m2mpay.stream.messages import FlowTotals, SessionStop, SignedReceipt
from m2mpay.stream.outputs import SendSession, SessionCode, SessionOutput
from m2mpay.stream.receipts import check_peer_receipt, sign_receipt, stopped_event, view_of
from m2mpay.stream.state import Flow, SessionPhase, SessionState

__all__ = ["awaits_countersignature", "receipt_after_stop", "tick_after_stop", "totals_after_stop"]


def awaits_countersignature(state: SessionState) -> bool:
    """Stopped on our own view, with no receipt of the peer's that states the same."""
    theirs = state.peer_receipt
    return (
        state.phase is SessionPhase.STOPPED
        and state.my_receipt is not None
        and (theirs is None or view_of(theirs) != view_of(state))
    )


def tick_after_stop(ctx: SessionContext, state: SessionState, inp: SessionTick) -> Result:
    """The peer is seen again after we last heard from it: say our stop and receipt again."""
    now = inp.now_ms
    mine = state.my_receipt
    if (
        not awaits_countersignature(state)
        or mine is None  # (for the type checker: it is never None here)
        or inp.peer_seen_ms <= state.heard_ms
        or not due_to_resend(ctx, state, state.heard_ms, now)
    ):
        return state, ()
    outputs: tuple[SessionOutput, ...] = (
        SendSession(state.peer, SessionStop(state.session_id, state.stop_reason, state.stopped_ms)),
    )
    for reversed_flow in (False, True):
        if state.delivers(reversed_flow):  # a peer still stopping waits for these
            state, sent = report(state, reversed_flow, final=True)
            outputs += sent
    outputs += (SendSession(state.peer, mine),)
    return state.evolve(resent_ms=now), outputs


def totals_after_stop(state: SessionState, inp: ChannelTotals) -> SessionState:
    """Payments that were in flight at the cut, for flows we deliver, count once received."""
    if not awaits_countersignature(state):
        return state
    for reversed_flow in (False, True):
        if state.delivers(reversed_flow):
            flow = state.flow(reversed_flow)
            payer_base = state.seller_base if reversed_flow else state.buyer_base
            paid = max(0, inp.received_total - payer_base)
            if flow.paid < paid <= flow.value:  # money beyond the value is not this session's
                state = state.with_flow(reversed_flow, replace(flow, paid=paid))
    return state


def receipt_after_stop(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, SignedReceipt)
    if not awaits_countersignature(state):
        return state, ()
    refused = check_peer_receipt(ctx, state, inp)
    if refused is not None:
        return refused
    merged = _merged(state, message)
    if merged is None:
        return refuse_peer(
            state,
            inp.sender,
            state.session_id,
            SessionCode.RECEIPT_MISMATCH,
            "the receipt states more than this side can check",
        )
    new = heard(merged, inp.now_ms)
    outputs: tuple[SessionOutput, ...] = ()
    mine = new.my_receipt
    if mine is None or view_of(mine) != view_of(new):
        mine = sign_receipt(ctx, new)
        new = new.evolve(my_receipt=mine)
        outputs += (SendSession(new.peer, mine),)
    if view_of(message) == view_of(new):
        new = new.evolve(peer_receipt=message)
        outputs += (stopped_event(new, countersigned=True),)
    return new, outputs


def _merged(state: SessionState, theirs: SignedReceipt) -> SessionState | None:
    """Our view with what we can check of theirs adopted; None if theirs cannot hold."""
    for reversed_flow, claimed in ((False, theirs.forward), (True, theirs.backward)):
        flow = state.flow(reversed_flow)
        if state.delivers(reversed_flow):
            # The payer may know less than we metered, never more.
            if claimed.units > flow.units or claimed.value > flow.value:
                return None
            continue
        adopted = _adopted(state, reversed_flow, claimed)
        if adopted is None:
            return None
        state = state.with_flow(reversed_flow, adopted)
    return state.evolve(stopped_ms=min(state.stopped_ms, theirs.stopped_ms))


def _adopted(state: SessionState, reversed_flow: bool, claimed: FlowTotals) -> Flow | None:
    """A flow we pay, with the deliverer's units if they fit our prices and our credit."""
    flow = state.flow(reversed_flow)
    if claimed.paid > flow.paid or claimed.units < flow.units:
        return None  # more money than we sent, or fewer units than it reported to us
    if claimed.value != flow.value + state.value_of(reversed_flow, flow.units, claimed.units):
        return None
    credit = state.window_allowed(reversed_flow) if state.leader_delivers() else 0
    if claimed.value > flow.paid + credit:
        return None
    return replace(flow, units=claimed.units, value=claimed.value)
