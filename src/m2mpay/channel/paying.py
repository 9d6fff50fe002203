"""Payments, acknowledgements and resynchronisation: the machine's hot path."""

from __future__ import annotations

from dataclasses import replace

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import (
    Pay,
    Received,
    Resync,
)
from m2mpay.channel.messages import (
    ChannelAccept,
    ChannelProposal,
    ChannelSync,
    PaymentAck,
    PaymentMessage,
    PeerError,
)
from m2mpay.channel.outputs import (
    ErrorCode,
    Notify,
    Output,
    PaymentAcknowledged,
    PaymentReceived,
    PeerReportedError,
    Rejected,
    Send,
)
from m2mpay.channel.rules import (
    MONEY_PHASES,
    NO_OUTPUTS,
    OPEN_PHASE,
    Result,
    check_peer_message,
    defend,
    local_request_in,
    peer_message_in,
    proof_signer,
    refuse,
    refuse_peer,
)
from m2mpay.channel.state import ChannelState, Phase
from m2mpay.crypto import (
    Signature,
    balance_proof_digest,
)

__all__ = [
    "pay",
    "payment_message",
    "received_ack",
    "received_payment",
    "received_peer_error",
    "received_sync",
    "resync",
    "sync_message",
]

_BEFORE_OPEN = frozenset({Phase.PROPOSED, Phase.ACCEPTED})

# -- paying


@local_request_in(OPEN_PHASE)
def pay(ctx: ChannelContext, state: ChannelState, inp: Pay) -> Result:
    amount = inp.amount
    if amount <= 0:
        return refuse(
            state, ErrorCode.NON_POSITIVE_AMOUNT, "amount must be positive", inp.channel_id
        )
    if amount > state.my_balance:
        return refuse(
            state,
            ErrorCode.INSUFFICIENT_BALANCE,
            f"balance is {state.my_balance}, asked to pay {amount}",
            inp.channel_id,
        )
    total = state.sent_total + amount
    seq = state.sent_seq + 1
    signature = ctx.signer.sign_digest(balance_proof_digest(ctx.domain, state.channel_id, total))
    new = state.evolve(sent_total=total, sent_seq=seq, sent_signature=signature)
    return new, (Send(state.peer, payment_message(ctx, new, amount)),)


def payment_message(ctx: ChannelContext, state: ChannelState, amount: int) -> PaymentMessage:
    """Our newest proof as a payment of `amount` (the rise since what the peer holds)."""
    assert state.sent_signature is not None
    domain = ctx.domain
    return PaymentMessage(
        state.channel_id,
        domain.chain_id,
        domain.verifying_contract,
        state.sent_total,
        amount,
        state.sent_seq,
        state.sent_signature,
    )


@peer_message_in(MONEY_PHASES)
def received_payment(ctx: ChannelContext, state: ChannelState, inp: Received) -> Result:
    message = inp.message
    assert isinstance(message, PaymentMessage)
    if message.chain_id != ctx.domain.chain_id:
        return refuse_peer(
            state, inp, ErrorCode.WRONG_CHAIN, f"proof is for chain {message.chain_id}"
        )
    if message.hub != ctx.domain.verifying_contract:
        return refuse_peer(state, inp, ErrorCode.WRONG_CONTRACT, "proof is for another hub")
    if message.amount == 0:
        return refuse_peer(state, inp, ErrorCode.NON_POSITIVE_AMOUNT, "amount must be positive")
    return _accept_proof(
        ctx, state, inp, message.total, message.seq, message.signature, message.amount
    )


def _accept_proof(
    ctx: ChannelContext,
    state: ChannelState,
    inp: Received,
    total: int,
    seq: int,
    signature: Signature,
    amount: int | None,
) -> Result:
    """Take a newer running total from the peer, after every check a payee must make."""
    if total <= state.received_total or seq <= state.received_seq:
        return refuse_peer(
            state,
            inp,
            ErrorCode.STALE_PROOF,
            f"have total {state.received_total} (payment {state.received_seq}) already",
        )
    credited = total - state.received_total
    if amount is not None and seq == state.received_seq + 1 and credited != amount:
        return refuse_peer(
            state,
            inp,
            ErrorCode.AMOUNT_MISMATCH,
            f"total rises by {credited}, amount says {amount}",
        )
    if state.peer_deposit + state.sent_total - total < 0:
        return refuse_peer(
            state, inp, ErrorCode.OVERDRAFT, f"peer holds {state.peer_balance}, paid {credited}"
        )
    if proof_signer(ctx, state, total, signature) != state.peer:
        return refuse_peer(state, inp, ErrorCode.BAD_SIGNATURE, "proof is not signed by the peer")
    new = state.evolve(received_total=total, received_seq=seq, received_signature=signature)
    outputs: tuple[Output, ...] = (
        Send(state.peer, PaymentAck(state.channel_id, total, seq)),
        Notify(PaymentReceived(state.channel_id, credited, total, seq)),
    )
    if new.phase is Phase.DISPUTED:
        new, defence = defend(new)
        outputs += defence
    return new, outputs


@peer_message_in(MONEY_PHASES)
def received_ack(ctx: ChannelContext, state: ChannelState, inp: Received) -> Result:
    message = inp.message
    assert isinstance(message, PaymentAck)
    if message.total > state.sent_total or message.seq > state.sent_seq:
        return refuse_peer(state, inp, ErrorCode.BAD_ACK, "acknowledges more than we sent")
    if message.seq <= state.acked_seq:
        return state, NO_OUTPUTS
    new = state.evolve(acked_total=message.total, acked_seq=message.seq)
    return new, (Notify(PaymentAcknowledged(state.channel_id, message.total, message.seq)),)


def resync(ctx: ChannelContext, state: ChannelState | None, inp: Resync) -> Result:
    if state is None:
        return refuse(state, ErrorCode.UNKNOWN_CHANNEL, "no such channel", inp.channel_id)
    if state.phase is Phase.PROPOSED and state.we_are_a:
        return state, (Send(state.peer, ChannelProposal(state.terms, state.expires_at_ms)),)
    if state.phase is Phase.ACCEPTED and not state.we_are_a:
        return state, (Send(state.peer, ChannelAccept(state.channel_id)),)
    if state.phase not in MONEY_PHASES:
        return state, NO_OUTPUTS
    return state, (sync_message(state),)


def sync_message(state: ChannelState) -> Send:
    """What we hold of both running totals, so the peer can resend or take what we missed."""
    sync = ChannelSync(
        state.channel_id,
        state.sent_total,
        state.sent_seq,
        state.sent_signature,
        state.received_total,
        state.received_seq,
        state.received_signature,
    )
    return Send(state.peer, sync)


def received_sync(ctx: ChannelContext, state: ChannelState | None, inp: Received) -> Result:
    if state is not None and inp.sender == state.peer and state.phase in _BEFORE_OPEN:
        # The peer saw the open before we did; we send our own sync once we see it.
        return state, NO_OUTPUTS
    refused = check_peer_message(state, inp, MONEY_PHASES)
    if refused:
        return refused
    assert state is not None
    message = inp.message
    assert isinstance(message, ChannelSync)
    outputs: tuple[Output, ...] = ()
    new = state
    # The peer's own newest proof, which we may have missed.
    if message.sent_total > new.received_total:
        if message.sent_signature is None:
            return refuse_peer(state, inp, ErrorCode.BAD_SIGNATURE, "sync total without proof")
        new_or_refused, accepted = _accept_proof(
            ctx, new, inp, message.sent_total, message.sent_seq, message.sent_signature, None
        )
        if any(isinstance(o, Rejected) for o in accepted):
            return state, accepted
        assert new_or_refused is not None
        new, outputs = new_or_refused, accepted
    # Our own newest proof as the peer holds it: a crash may have cost us its record.
    if message.received_total > new.sent_total:
        signature = message.received_signature
        if signature is None or proof_signer(ctx, new, message.received_total, signature) != ctx.me:
            return refuse_peer(
                state, inp, ErrorCode.BAD_SIGNATURE, "claimed total is not signed by us"
            )
        new = replace(
            new,
            sent_total=message.received_total,
            sent_seq=message.received_seq,
            sent_signature=signature,
        )
    elif message.received_total < new.sent_total and new.sent_signature is not None:
        catch_up = payment_message(ctx, new, new.sent_total - message.received_total)
        outputs += (Send(new.peer, catch_up),)
    if message.received_seq > new.acked_seq and message.received_total <= new.sent_total:
        new = replace(new, acked_total=message.received_total, acked_seq=message.received_seq)
        outputs += (
            Notify(
                PaymentAcknowledged(new.channel_id, message.received_total, message.received_seq)
            ),
        )
    return new, outputs


def received_peer_error(ctx: ChannelContext, state: ChannelState | None, inp: Received) -> Result:
    message = inp.message
    assert isinstance(message, PeerError)
    if state is not None and inp.sender != state.peer:
        return state, NO_OUTPUTS
    return state, (Notify(PeerReportedError(message.channel_id, message.code, message.message)),)
