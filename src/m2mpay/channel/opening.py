"""Proposing, accepting and funding channels: the machine's handlers up to an open channel."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import (
    Accept,
    ChainDeposited,
    ChainOpened,
    Propose,
    Received,
    Reject,
    TopUp,
)
from m2mpay.channel.messages import (
    ChannelAccept,
    ChannelProposal,
    ChannelReject,
    ChannelTerms,
)
from m2mpay.channel.outputs import (
    ChannelAccepted,
    ChannelOpened,
    ChannelRejected,
    DepositConfirmed,
    DepositTx,
    ErrorCode,
    Notify,
    OpenTx,
    Output,
    ProposalReceived,
    Send,
)
from m2mpay.channel.paying import sync_message
from m2mpay.channel.rules import (
    NO_OUTPUTS,
    OPEN_PHASE,
    OPENABLE_PHASES,
    Result,
    channel_key,
    local_request_in,
    onchain_fields,
    peer_message_in,
    refuse,
    refuse_peer,
    submit,
)
from m2mpay.channel.state import ChannelState, Phase
from m2mpay.crypto import (
    UINT256_MAX,
    ZERO_ADDRESS,
)

__all__ = [
    "accept",
    "chain_deposited",
    "chain_opened",
    "propose",
    "received_accept",
    "received_proposal",
    "received_reject",
    "reject",
    "top_up",
]

# -- proposing and accepting


def propose(ctx: ChannelContext, state: ChannelState | None, inp: Propose) -> Result:
    channel = channel_key(ctx, inp)
    if state is not None:
        return refuse(state, ErrorCode.DUPLICATE_CHANNEL, "channel id already in use", channel)
    problem = _terms_problem(ctx, inp.peer, inp.deposit, inp.peer_deposit, inp.challenge_period)
    if inp.peer == ctx.me:
        problem = "a channel needs two parties"
    if problem:
        return refuse(state, ErrorCode.INVALID_PROPOSAL, problem, channel)
    terms = ChannelTerms(
        chain_id=ctx.domain.chain_id,
        hub=ctx.domain.verifying_contract,
        a=ctx.me,
        b=inp.peer,
        asset=inp.asset,
        challenge_period=inp.challenge_period,
        nonce=inp.nonce,
        deposit_a=inp.deposit,
        deposit_b=inp.peer_deposit,
    )
    expires = inp.now_ms + inp.ttl_ms
    new = ChannelState(terms, terms.channel_id, True, Phase.PROPOSED, expires_at_ms=expires)
    return new, (Send(inp.peer, ChannelProposal(terms, expires)),)


def _terms_problem(
    ctx: ChannelContext, peer: Any, deposit_a: int, deposit_b: int, period: int
) -> str | None:
    config = ctx.config
    if peer == ZERO_ADDRESS:
        return "peer is the zero address"
    if deposit_a <= 0:
        return "party a must deposit something"
    if deposit_b < 0 or max(deposit_a, deposit_b) > UINT256_MAX:
        # No hub holds it: such a proposal could only wait until it expires.
        return "deposits must be below 2^256"
    if not config.min_challenge_period <= period <= config.max_challenge_period:
        return (
            f"challenge period must be {config.min_challenge_period}"
            f"..{config.max_challenge_period} s, got {period}"
        )
    return None


def received_proposal(ctx: ChannelContext, state: ChannelState | None, inp: Received) -> Result:
    message = inp.message
    assert isinstance(message, ChannelProposal)
    terms = message.terms
    if state is not None:
        if state.terms == terms and not state.we_are_a:
            return state, NO_OUTPUTS  # a resent proposal: already known
        return refuse_peer(state, inp, ErrorCode.DUPLICATE_CHANNEL, "channel id already in use")
    if terms.chain_id != ctx.domain.chain_id:
        return refuse_peer(
            state, inp, ErrorCode.WRONG_CHAIN, f"we are on chain {ctx.domain.chain_id}"
        )
    if terms.hub != ctx.domain.verifying_contract:
        return refuse_peer(state, inp, ErrorCode.WRONG_CONTRACT, "proposal names another hub")
    if terms.b != ctx.me or terms.a != inp.sender:
        return refuse_peer(state, inp, ErrorCode.NOT_A_PARTY, "proposal must be from a to us as b")
    if terms.a == terms.b:
        return refuse_peer(state, inp, ErrorCode.INVALID_PROPOSAL, "parties must differ")
    problem = _terms_problem(ctx, terms.a, terms.deposit_a, terms.deposit_b, terms.challenge_period)
    if problem:
        return refuse_peer(state, inp, ErrorCode.INVALID_PROPOSAL, problem)
    if message.expires_at_ms <= inp.now_ms:
        return refuse_peer(state, inp, ErrorCode.INVALID_PROPOSAL, "proposal has expired")
    new = ChannelState(
        terms, terms.channel_id, False, Phase.PROPOSED, expires_at_ms=message.expires_at_ms
    )
    return new, (Notify(ProposalReceived(new.channel_id, terms, message.expires_at_ms)),)


def accept(ctx: ChannelContext, state: ChannelState | None, inp: Accept) -> Result:
    channel = inp.channel_id
    answer = ChannelAccept(channel), ChannelAccepted(channel)
    return _answer_proposal(state, channel, "accept", Phase.ACCEPTED, *answer)


def reject(ctx: ChannelContext, state: ChannelState | None, inp: Reject) -> Result:
    channel = inp.channel_id
    answer = ChannelReject(channel, inp.reason), ChannelRejected(channel, inp.reason)
    return _answer_proposal(state, channel, "reject", Phase.REJECTED, *answer)


def _answer_proposal(
    state: ChannelState | None,
    channel: bytes,
    verb: str,
    phase: Phase,
    message: ChannelAccept | ChannelReject,
    event: ChannelAccepted | ChannelRejected,
) -> Result:
    """Only the proposal's receiver answers it, and only while it stands open."""
    if state is None:
        return refuse(state, ErrorCode.UNKNOWN_CHANNEL, "no such channel", channel)
    if state.we_are_a or state.phase is not Phase.PROPOSED:
        return refuse(state, ErrorCode.INVALID_PHASE, f"no proposal to {verb}", channel)
    return state.moved_to(phase), (Send(state.peer, message), Notify(event))


@peer_message_in(frozenset({Phase.PROPOSED, Phase.ACCEPTED}))
def received_accept(ctx: ChannelContext, state: ChannelState, inp: Received) -> Result:
    if state.phase is Phase.ACCEPTED or not state.we_are_a:
        return state, NO_OUTPUTS  # a repeated accept
    new = state.moved_to(Phase.ACCEPTED)
    new, submission = submit(new, OpenTx(new.terms))
    return new, (submission, Notify(ChannelAccepted(state.channel_id)))


@peer_message_in(frozenset({Phase.PROPOSED}))
def received_reject(ctx: ChannelContext, state: ChannelState, inp: Received) -> Result:
    assert isinstance(inp.message, ChannelReject)
    new = state.moved_to(Phase.REJECTED)
    return new, (Notify(ChannelRejected(state.channel_id, inp.message.reason)),)


# -- top-up


@local_request_in(OPEN_PHASE)
def top_up(ctx: ChannelContext, state: ChannelState, inp: TopUp) -> Result:
    if inp.amount <= 0:
        return refuse(
            state, ErrorCode.NON_POSITIVE_AMOUNT, "amount must be positive", inp.channel_id
        )
    new, submission = submit(
        state, DepositTx(**onchain_fields(state), participant=ctx.me, amount=inp.amount)
    )
    return new, (submission,)


def chain_opened(ctx: ChannelContext, state: ChannelState | None, inp: ChainOpened) -> Result:
    if state is None:
        if ctx.me not in (inp.a, inp.b):
            return state, NO_OUTPUTS
        # A channel of ours we have no record of: track it, the money is real.
        terms = ChannelTerms(
            ctx.domain.chain_id,
            ctx.domain.verifying_contract,
            inp.a,
            inp.b,
            inp.asset,
            inp.challenge_period,
            inp.nonce,
            inp.deposit_a,
            0,
        )
        state = ChannelState(terms, inp.channel_id, inp.a == ctx.me, Phase.EXPIRED)
    if state.phase not in OPENABLE_PHASES:
        return state, NO_OUTPUTS  # already open, or an event we have seen before
    new = replace(state.moved_to(Phase.OPEN), deposit_a=inp.deposit_a, deposit_b=0).without_pending(
        "open"
    )
    # A payment the peer sent before we saw the open was refused; the sync makes it resend.
    outputs: tuple[Output, ...] = (
        Notify(ChannelOpened(new.channel_id, inp.deposit_a, 0)),
        sync_message(new),
    )
    if not new.we_are_a and new.terms.deposit_b > 0:
        new, submission = submit(
            new, DepositTx(**onchain_fields(new), participant=ctx.me, amount=new.terms.deposit_b)
        )
        outputs += (submission,)
    return new, outputs


def chain_deposited(ctx: ChannelContext, state: ChannelState | None, inp: ChainDeposited) -> Result:
    if state is None or (state.deposit_a, state.deposit_b) == (inp.deposit_a, inp.deposit_b):
        return state, NO_OUTPUTS
    new = replace(state, deposit_a=inp.deposit_a, deposit_b=inp.deposit_b)
    if inp.participant == ctx.me:
        new = new.without_pending("deposit")
    return new, (Notify(DepositConfirmed(new.channel_id, inp.deposit_a, inp.deposit_b)),)
