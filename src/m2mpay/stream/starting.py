"""How a metered session starts: the buyer's start, the seller's answer to a request
(checked against its offer and the channel it names), and the buyer's side of the
answer. A seller that accepts, and a buyer that hears so, run the session
(`activate`); from there `m2mpay.stream.machine` takes over."""

from __future__ import annotations

from m2mpay.crypto import Address
from m2mpay.stream.context import (
    Result,
    SessionContext,
    Step,
    heard,
    refuse,
    refuse_peer,
)
from m2mpay.stream.ending import (
    end_unstarted,
    never_started,
    session_request,
)
from m2mpay.stream.flows import (
    Outputs,
    refresh_allowances,
)
from m2mpay.stream.inputs import (
    RequestReceived,
    SessionReceived,
    StartSession,
)
from m2mpay.stream.messages import (
    SessionAccepted,
    SessionRejected,
    SessionRequest,
)
from m2mpay.stream.offer import Offer, offer_problem
from m2mpay.stream.outputs import (
    PayUpTo,
    SendSession,
    SessionCode,
    SessionNotify,
    SessionRefused,
    SessionStarted,
)
from m2mpay.stream.receipts import stopped_event
from m2mpay.stream.state import Flow, SessionPhase, SessionState

__all__ = ["accepted", "activate", "below_minimum", "rejected", "request", "start"]


def below_minimum(offer: Offer, target_units: int, budget: int) -> str:
    """Why a purchase bounded by `target_units` or `budget` buys less than the offer's
    minimum (empty if it does not)."""
    if not offer.min_units:
        return ""
    if target_units and target_units < offer.min_units:
        return f"the offer sells at least {offer.min_units} {offer.unit}"
    if budget and budget < offer.min_units * offer.price:
        return f"the budget does not buy the offer's minimum of {offer.min_units} {offer.unit}"
    return ""


def _new_session(
    terms: StartSession | SessionRequest,
    offer: Offer,
    *,
    we_sell: bool,
    peer: Address,
    phase: SessionPhase,
    started_ms: int,
    heard_ms: int,
    supplies: bytes | None = None,
) -> SessionState:
    """A session as its terms (the buyer's start, or its request as the seller reads
    it) and the offer make it: at the offer's price from the first unit."""
    return SessionState(
        session_id=terms.session_id,
        offer=offer,
        we_sell=we_sell,
        peer=peer,
        channel_id=terms.channel_id,
        phase=phase,
        price=offer.price,
        price_from=1,
        previous_price=offer.price,
        limit_price=terms.limit_price,
        budget=terms.budget,
        target_units=terms.target_units,
        allow_reverse=terms.allow_reverse and offer.reverse_price > 0,
        buyer_base=terms.buyer_sent_base,
        seller_base=terms.seller_sent_base,
        started_ms=started_ms,
        heard_ms=heard_ms,
        supplies=supplies,
        supply_terms=terms.supply_terms,
    )


def start(ctx: SessionContext, state: SessionState | None, inp: StartSession) -> Result:
    if state is not None:
        return refuse(state, SessionCode.INVALID_PHASE, "session id already in use", inp.session_id)
    offer = inp.offer
    problem = offer_problem(offer, inp.now_ms)
    if problem:
        return refuse(state, SessionCode.INVALID_OFFER, problem, inp.session_id)
    if offer.price > inp.limit_price:
        return refuse(
            state,
            SessionCode.PRICE_ABOVE_LIMIT,
            f"offer price {offer.price} is above our limit",
            inp.session_id,
        )
    if inp.budget and inp.budget < offer.price:
        return refuse(
            state, SessionCode.INVALID_OFFER, "the budget does not buy one unit", inp.session_id
        )
    short = below_minimum(offer, inp.target_units, inp.budget)
    if short:
        return refuse(state, SessionCode.INVALID_OFFER, short, inp.session_id)
    new = _new_session(
        inp,
        offer,
        we_sell=False,
        peer=offer.seller,
        phase=SessionPhase.REQUESTED,
        started_ms=inp.now_ms,
        heard_ms=inp.now_ms,
        supplies=inp.supplies,
    )
    return new, (SendSession(offer.seller, session_request(new)),)


def _request_problem(ctx: SessionContext, inp: RequestReceived) -> tuple[SessionCode, str] | None:
    offer, request = inp.offer, inp.request
    if offer is None or offer.seller != ctx.me:
        return SessionCode.UNKNOWN_OFFER, "no such offer"
    problem = offer_problem(offer, inp.now_ms)
    if problem:
        return SessionCode.INVALID_OFFER, problem
    if inp.channel_peer != inp.sender:
        return SessionCode.UNKNOWN_CHANNEL, "no open channel with the buyer under that id"
    if inp.channel_asset != offer.asset:
        return SessionCode.UNKNOWN_CHANNEL, "the channel is in another asset than the offer"
    if inp.channel_busy:
        return SessionCode.CHANNEL_BUSY, "another session is running on this channel"
    if inp.seller_sent_total != request.seller_sent_base:
        return SessionCode.CHANNEL_BUSY, "the channel totals do not match; payments are in flight"
    if request.buyer_sent_base < inp.buyer_sent_total:
        # A lower base would count payments made before the session as paid in it.
        return SessionCode.CHANNEL_BUSY, "the buyer's base is below what it has already paid"
    if request.limit_price < offer.price:
        return SessionCode.PRICE_ABOVE_LIMIT, f"the price is {offer.price}"
    if request.budget and request.budget < offer.price:
        return SessionCode.INVALID_OFFER, "the budget does not buy one unit"
    short = below_minimum(offer, request.target_units, request.budget)
    if short:
        return SessionCode.INVALID_OFFER, short
    if inp.supply_problem:
        return SessionCode.SUPPLY_REFUSED, inp.supply_problem
    return None


def request(ctx: SessionContext, state: SessionState | None, inp: RequestReceived) -> Result:
    request = inp.request
    if state is not None:
        if state.peer == inp.sender:
            if state.phase is not SessionPhase.ACTIVE:
                return state, ()  # a repeat; our stop is repeated on its own
            # A repeat: our acceptance was lost.
            accepted = SessionAccepted(state.session_id, state.price, state.started_ms)
            return state, (SendSession(inp.sender, accepted),)
        return refuse_peer(
            state,
            inp.sender,
            request.session_id,
            SessionCode.INVALID_PHASE,
            "session id already in use",
        )
    problem = _request_problem(ctx, inp)
    if problem is not None:
        code, message = problem
        return state, (
            SessionRefused(code, message, request.session_id),
            SendSession(
                inp.sender, SessionRejected(request.session_id, f"{code.value}: {message}")
            ),
        )
    offer = inp.offer
    assert offer is not None
    new = _new_session(
        request,
        offer,
        we_sell=True,
        peer=inp.sender,
        phase=SessionPhase.ACTIVE,
        started_ms=request.at_ms,  # the buyer's start: both receipts carry the same times
        heard_ms=inp.now_ms,
    )
    new, permits = refresh_allowances(new)
    return new, (
        SendSession(inp.sender, SessionAccepted(new.session_id, new.price, inp.now_ms)),
        SessionNotify(SessionStarted(new.session_id, new.price)),
        *permits,
    )


def accepted(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    if state.phase is not SessionPhase.REQUESTED or state.we_sell:
        return state, ()
    return activate(heard(state, inp.now_ms))


def activate(state: SessionState) -> Step:
    """The seller runs the session: a buyer that pays first prepays one window."""
    new = state.moved_to(SessionPhase.ACTIVE)
    outputs: Outputs = (SessionNotify(SessionStarted(new.session_id, new.price)),)
    if not new.leader_delivers():
        ahead = new.offer.window
        bounds = [b for b in (new.target_units, new.offer.max_units) if b]
        if bounds:
            ahead = min(ahead, *bounds)
        prepaid = ahead * new.price
        if new.budget:
            prepaid = min(prepaid, new.budget_cap(0))
        new = new.evolve(forward=Flow(paid=prepaid))
        outputs += (PayUpTo(new.session_id, new.channel_id, False, prepaid),)
    return new, outputs


def rejected(ctx: SessionContext, state: SessionState, inp: SessionReceived) -> Result:
    message = inp.message
    assert isinstance(message, SessionRejected)
    if never_started(state):
        return end_unstarted(state, f"rejected: {message.reason}")
    if state.phase is not SessionPhase.REQUESTED:
        return state, ()
    new = state.moved_to(SessionPhase.REJECTED).evolve(stop_reason=message.reason)
    return new, (stopped_event(new, countersigned=False),)
