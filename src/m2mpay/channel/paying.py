"""Payments, acknowledgements and resynchronisation: the machine's hot path."""

from __future__ import annotations

from dataclasses import replace

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import (
    Commit,
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
from m2mpay.channel.state import ChannelState, Phase, WireProof
from m2mpay.crypto import (
    Signature,
    balance_proof_digest,
)

__all__ = [
    "commit",
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
    refused = _unpayable(state, inp.amount, inp.channel_id)
    if refused:
        return refused
    new = _signed(ctx, state, inp.amount)
    if new.wire_proof is not None:
        new = new.evolve(wire_proof=None)  # this total goes over the wire, whole
    return new, (Send(state.peer, payment_message(ctx, new, inp.amount)),)


@local_request_in(OPEN_PHASE)
def commit(ctx: ChannelContext, state: ChannelState, inp: Commit) -> Result:
    """Sign the next running total as `pay` does, but send nothing: the application
    carries the proof (an HTTP 402 payment) and the payee's node takes it from there.
    Until the payee acknowledges it, a resync hands over only the proof before it
    (`ChannelState.wire_proof`); a later `pay` carries it, and so does a close: a
    signed total is paid."""
    refused = _unpayable(state, inp.amount, inp.channel_id)
    if refused:
        return refused
    new = _signed(ctx, state, inp.amount)
    if state.wire_proof is None:
        held = WireProof(state.sent_total, state.sent_seq, state.sent_signature)
        new = new.evolve(wire_proof=held)
    return new, NO_OUTPUTS


def _unpayable(state: ChannelState, amount: int, channel_id: bytes) -> Result | None:
    if amount <= 0:
        return refuse(state, ErrorCode.NON_POSITIVE_AMOUNT, "amount must be positive", channel_id)
    if amount > state.my_balance:
        return refuse(
            state,
            ErrorCode.INSUFFICIENT_BALANCE,
            f"balance is {state.my_balance}, asked to pay {amount}",
            channel_id,
        )
    return None


def _signed(ctx: ChannelContext, state: ChannelState, amount: int) -> ChannelState:
    total = state.sent_total + amount
    signature = ctx.signer.sign_digest(balance_proof_digest(ctx.domain, state.channel_id, total))
    return state.evolve(sent_total=total, sent_seq=state.sent_seq + 1, sent_signature=signature)


def payment_message(ctx: ChannelContext, state: ChannelState, amount: int) -> PaymentMessage:
    """Our newest proof as a payment of `amount` (the rise since what the peer holds)."""
    assert state.sent_signature is not None
    proof = WireProof(state.sent_total, state.sent_seq, state.sent_signature)
    return _proof_message(ctx, state.channel_id, proof, amount)


def _proof_message(
    ctx: ChannelContext, channel_id: bytes, proof: WireProof, amount: int
) -> PaymentMessage:
    assert proof.signature is not None
    domain = ctx.domain
    return PaymentMessage(
        channel_id,
        domain.chain_id,
        domain.verifying_contract,
        proof.total,
        amount,
        proof.seq,
        proof.signature,
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
    held = _still_held(state, message.total)
    new = state.evolve(acked_total=message.total, acked_seq=message.seq, wire_proof=held)
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


def _still_held(state: ChannelState, acked_total: int) -> WireProof | None:
    """`state.wire_proof` once the peer acknowledged `acked_total`: gone when that is
    our whole total (the peer has every commitment)."""
    return None if acked_total >= state.sent_total else state.wire_proof


def _wire(state: ChannelState) -> WireProof:
    """Our newest proof the wire may carry (see `ChannelState.wire_proof`)."""
    if state.wire_proof is not None:
        return state.wire_proof
    return WireProof(state.sent_total, state.sent_seq, state.sent_signature)


def sync_message(state: ChannelState) -> Send:
    """What we hold of both running totals, so the peer can resend or take what we missed."""
    ours = _wire(state)
    sync = ChannelSync(
        state.channel_id,
        ours.total,
        ours.seq,
        ours.signature,
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
            wire_proof=None,
        )
    else:
        ours = _wire(new)
        if message.received_total < ours.total and ours.signature is not None:
            catch_up = _proof_message(
                ctx, new.channel_id, ours, ours.total - message.received_total
            )
            outputs += (Send(new.peer, catch_up),)
    if message.received_seq > new.acked_seq and message.received_total <= new.sent_total:
        new = replace(
            new,
            acked_total=message.received_total,
            acked_seq=message.received_seq,
            wire_proof=_still_held(new, message.received_total),
        )
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
