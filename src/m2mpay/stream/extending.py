"""A running session made longer: the buyer raises its target or budget (a data feed's
reader paying for more time before its paid time ends, so it is never cut off).

The buyer asks (`ExtendSession`), tells the seller (`SessionExtend`) and, when the
payer goes first, pays ahead for the new units at once; the seller raises its copy
of the bounds and widens its device's permit as the payments arrive. Bounds only
grow: a lower target or budget would let a side count units or money the other
has already counted.
"""

from __future__ import annotations

from dataclasses import replace

from m2mpay.stream.context import Result, SessionContext, heard, refuse, refuse_peer
from m2mpay.stream.flows import Outputs, paid_ahead, refresh_allowances
from m2mpay.stream.inputs import ExtendSession, SessionReceived
from m2mpay.stream.messages import SessionExtend
from m2mpay.stream.outputs import PayUpTo, SendSession, SessionCode
from m2mpay.stream.state import SessionPhase, SessionState

__all__ = ["extend_local", "extend_message", "pay_ahead"]


def _lower(old: int, new: int) -> bool:
    """Whether `new` is a lower bound than `old`, where 0 means no bound."""
    return new != 0 and (old == 0 or new < old)


def _problem(state: SessionState, target_units: int, budget: int) -> str | None:
    if state.phase is not SessionPhase.ACTIVE:
        return "the session is not running"
    if _lower(state.target_units, target_units):
        return f"the target may only grow (it is {state.target_units})"
    if _lower(state.budget, budget):
        return f"the budget may only grow (it is {state.budget})"
    if budget and budget < state.forward.value + state.price:
        return "the budget does not buy one more unit"
    return None


def pay_ahead(state: SessionState) -> tuple[SessionState, Outputs]:
    """A buyer that pays first stays one window ahead of what the seller reported,
    never past the units it wants or its budget."""
    flow = state.forward
    if state.we_sell or state.leader_delivers() or state.phase is not SessionPhase.ACTIVE:
        return state, ()
    due = paid_ahead(state, False, flow.units, flow.value)
    if state.budget:
        due = min(due, state.budget_cap(flow.value))
    if due <= flow.paid:
        return state, ()
    state = state.with_flow(False, replace(flow, paid=due))
    return state, (PayUpTo(state.session_id, state.channel_id, False, due),)


def extend_local(ctx: SessionContext, state: SessionState | None, inp: ExtendSession) -> Result:
    if state is None:
        return refuse(state, SessionCode.UNKNOWN_SESSION, "no such session", inp.session_id)
    if state.we_sell:
        return refuse(
            state, SessionCode.INVALID_EXTENSION, "only the buyer extends", inp.session_id
        )
    problem = _problem(state, inp.target_units, inp.budget)
    if problem is not None:
        return refuse(state, SessionCode.INVALID_EXTENSION, problem, inp.session_id)
    new = state.evolve(target_units=inp.target_units, budget=inp.budget)
    message = SessionExtend(state.session_id, inp.target_units, inp.budget)
    new, payments = pay_ahead(new)
    return new, (SendSession(state.peer, message), *payments)


def extend_message(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, SessionExtend)
    problem = None if state.we_sell else "only the buyer extends"
    problem = problem or _problem(state, message.target_units, message.budget)
    if problem is not None:
        return refuse_peer(
            state, inp.sender, state.session_id, SessionCode.INVALID_EXTENSION, problem
        )
    new = heard(state, inp.now_ms).evolve(target_units=message.target_units, budget=message.budget)
    return refresh_allowances(new)
