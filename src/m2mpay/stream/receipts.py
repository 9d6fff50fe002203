"""Session receipts: what each party signs at the end, and how the peer's is checked."""

from __future__ import annotations

from m2mpay.crypto import recover_signer, session_receipt_digest
from m2mpay.errors import InvalidSignature
from m2mpay.stream.context import Result, SessionContext, refuse_peer
from m2mpay.stream.inputs import SessionReceived
from m2mpay.stream.messages import SignedReceipt
from m2mpay.stream.outputs import SessionCode, SessionNotify, SessionStopped
from m2mpay.stream.state import SessionState

__all__ = ["check_peer_receipt", "receipt_digest", "sign_receipt", "stopped_event", "view_of"]


def receipt_digest(ctx: SessionContext, state: SessionState) -> bytes:
    forward, backward = state.receipt_totals()
    return session_receipt_digest(
        ctx.domain,
        state.session_id,
        state.channel_id,
        (forward.units, forward.value, forward.paid),
        (backward.units, backward.value, backward.paid),
        state.started_ms,
        state.stopped_ms,
    )


def sign_receipt(ctx: SessionContext, state: SessionState) -> SignedReceipt:
    """Our signature over the receipt of our current view."""
    forward, backward = state.receipt_totals()
    signature = ctx.signer.sign_digest(receipt_digest(ctx, state))
    return SignedReceipt(
        state.session_id,
        state.channel_id,
        forward,
        backward,
        state.started_ms,
        state.stopped_ms,
        signature,
    )


def view_of(of: SessionState | SignedReceipt) -> tuple[object, ...]:
    """What a receipt states: both directions' totals and the session's times."""
    if isinstance(of, SignedReceipt):
        return (of.forward, of.backward, of.started_ms, of.stopped_ms)
    forward, backward = of.receipt_totals()
    return (forward, backward, of.started_ms, of.stopped_ms)


def stopped_event(state: SessionState, *, countersigned: bool) -> SessionNotify:
    forward, backward = state.receipt_totals()
    return SessionNotify(
        SessionStopped(state.session_id, state.stop_reason, forward, backward, countersigned)
    )


# -- stopping


def check_peer_receipt(
    ctx: SessionContext, state: SessionState, inp: SessionReceived
) -> Result | None:
    """A refusal unless the receipt is of this session's channel and start, signed by
    the peer; None when it is."""
    message = inp.message
    assert isinstance(message, SignedReceipt)
    if message.channel_id != state.channel_id or message.started_ms != state.started_ms:
        return refuse_peer(
            state,
            inp.sender,
            state.session_id,
            SessionCode.RECEIPT_MISMATCH,
            "the receipt names another channel or another start",
        )
    digest = session_receipt_digest(
        ctx.domain,
        message.session_id,
        message.channel_id,
        (message.forward.units, message.forward.value, message.forward.paid),
        (message.backward.units, message.backward.value, message.backward.paid),
        message.started_ms,
        message.stopped_ms,
    )
    try:
        signer = recover_signer(digest, message.signature)
    except InvalidSignature:
        signer = None
    if signer != state.peer:
        return refuse_peer(
            state,
            inp.sender,
            state.session_id,
            SessionCode.BAD_SIGNATURE,
            "the receipt is not signed by the peer",
        )
    return None
