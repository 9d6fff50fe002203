"""Closing: cooperative close, unilateral close and its defence, settlement, time."""

from __future__ import annotations

from dataclasses import replace

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import (
    ChainChallenged,
    ChainClosing,
    ChainSettled,
    ForceClose,
    Received,
    RequestClose,
    Tick,
    TxFailed,
    TxMined,
)
from m2mpay.channel.messages import (
    CloseProposal,
    CloseRefusal,
    CloseReply,
)
from m2mpay.channel.outputs import (
    ChannelClosed,
    ChannelDisputed,
    ChannelExpired,
    CloseStarted,
    CooperativeCloseTx,
    ErrorCode,
    Notify,
    Output,
    PeerReportedError,
    Rejected,
    Send,
    SettleTx,
    TransactionFailed,
)
from m2mpay.channel.rules import (
    CLOSABLE_PHASES,
    MONEY_PHASES,
    NO_OUTPUTS,
    Result,
    close_unilaterally,
    defend,
    local_request_in,
    onchain_fields,
    peer_message_in,
    refuse,
    refuse_peer,
    submit,
)
from m2mpay.channel.state import ChannelState, CloseState, OnchainClose, Phase
from m2mpay.crypto import (
    Signature,
    recover_signer,
    settlement_digest,
)
from m2mpay.errors import InvalidSignature

__all__ = [
    "chain_challenged",
    "chain_closing",
    "chain_settled",
    "force_close",
    "received_close_proposal",
    "received_close_refusal",
    "received_close_reply",
    "request_close",
    "tick",
    "tx_failed",
    "tx_mined",
]

# -- closing


def request_close(ctx: ChannelContext, state: ChannelState | None, inp: RequestClose) -> Result:
    if state is None:
        return refuse(state, ErrorCode.UNKNOWN_CHANNEL, "no such channel", inp.channel_id)
    if state.phase is Phase.CLOSING:
        return state, NO_OUTPUTS
    if state.phase is not Phase.OPEN:
        return refuse(
            state, ErrorCode.INVALID_PHASE, f"channel is {state.phase.value}", inp.channel_id
        )
    new = replace(state.moved_to(Phase.CLOSING), close=CloseState(True, inp.now_ms))
    balance_a, balance_b = state.split()
    return new, (
        Send(state.peer, CloseProposal(state.channel_id, balance_a, balance_b)),
        Notify(CloseStarted(state.channel_id, True)),
    )


def _sign_split(ctx: ChannelContext, state: ChannelState, split: tuple[int, int]) -> Signature:
    return ctx.signer.sign_digest(settlement_digest(ctx.domain, state.channel_id, *split))


@peer_message_in(CLOSABLE_PHASES)
def received_close_proposal(ctx: ChannelContext, state: ChannelState, inp: Received) -> Result:
    close = state.close
    if close is not None and close.signature is not None:
        # We never sign a second split; repeat the one we gave.
        reply = CloseReply(state.channel_id, close.balance_a, close.balance_b, close.signature)
        return state, (Send(state.peer, reply),)
    split = state.split()
    signature = _sign_split(ctx, state, split)
    outputs: tuple[Output, ...] = (
        Send(state.peer, CloseReply(state.channel_id, *split, signature)),
    )
    if close is None:
        close = CloseState(False, inp.now_ms)
        outputs += (Notify(CloseStarted(state.channel_id, False)),)
    new = replace(
        state.moved_to(Phase.CLOSING),
        close=replace(close, balance_a=split[0], balance_b=split[1], signature=signature),
    )
    return new, outputs


@peer_message_in(frozenset({Phase.CLOSING}))
def received_close_reply(ctx: ChannelContext, state: ChannelState, inp: Received) -> Result:
    assert state.close is not None
    message = inp.message
    assert isinstance(message, CloseReply)
    split = (message.balance_a, message.balance_b)
    close = state.close
    ours_differs = close.signature is not None and split != (close.balance_a, close.balance_b)
    if split != state.split() or ours_differs:
        # Views disagree: no cooperative split exists that both of us signed.
        new, closing = close_unilaterally(state)
        return new, (
            Rejected(
                ErrorCode.CLOSE_MISMATCH, f"peer's split {split} is not ours", state.channel_id
            ),
            Send(state.peer, CloseRefusal(state.channel_id, "split does not match our view")),
            *closing,
        )
    digest = settlement_digest(ctx.domain, state.channel_id, *split)
    try:
        signer = recover_signer(digest, message.signature)
    except InvalidSignature:
        signer = None
    if signer != state.peer:
        return refuse_peer(state, inp, ErrorCode.BAD_SIGNATURE, "split is not signed by the peer")
    if "cooperative_close" in state.pending_tx:
        return state, NO_OUTPUTS
    mine = close.signature or _sign_split(ctx, state, split)
    sig_a, sig_b = (mine, message.signature) if state.we_are_a else (message.signature, mine)
    new = replace(
        state, close=replace(close, balance_a=split[0], balance_b=split[1], signature=mine)
    )
    tx = CooperativeCloseTx(
        **onchain_fields(new),
        balance_a=split[0],
        balance_b=split[1],
        signature_a=sig_a,
        signature_b=sig_b,
    )
    new, submission = submit(new, tx)
    return new, (submission,)


@peer_message_in(CLOSABLE_PHASES)
def received_close_refusal(ctx: ChannelContext, state: ChannelState, inp: Received) -> Result:
    assert isinstance(inp.message, CloseRefusal)
    new, closing = close_unilaterally(state)
    return new, (
        Notify(PeerReportedError(state.channel_id, "close_refused", inp.message.reason)),
        *closing,
    )


@local_request_in(CLOSABLE_PHASES)
def force_close(ctx: ChannelContext, state: ChannelState, inp: ForceClose) -> Result:
    new, outputs = close_unilaterally(state)
    return new, outputs


# -- the chain


def chain_closing(ctx: ChannelContext, state: ChannelState | None, inp: ChainClosing) -> Result:
    if state is None or state.phase not in MONEY_PHASES:
        return state, NO_OUTPUTS
    closing = OnchainClose(inp.closer, inp.deadline, inp.transferred_a, inp.transferred_b)
    if state.onchain_close == closing:
        return state, NO_OUTPUTS
    new = replace(state.moved_to(Phase.DISPUTED), onchain_close=closing).without_pending("close")
    new, defence = defend(new)
    event = ChannelDisputed(
        new.channel_id, inp.closer, inp.deadline, inp.transferred_a, inp.transferred_b
    )
    return new, (Notify(event), *defence)


def chain_challenged(
    ctx: ChannelContext, state: ChannelState | None, inp: ChainChallenged
) -> Result:
    if state is None or state.onchain_close is None:
        return state, NO_OUTPUTS
    closing = replace(
        state.onchain_close,
        transferred_a=inp.transferred_a,
        transferred_b=inp.transferred_b,
        deadline=inp.deadline,
    )
    if closing == state.onchain_close:
        return state, NO_OUTPUTS
    new = replace(state, onchain_close=closing).without_pending("challenge")
    new, defence = defend(new)
    return new, defence


def chain_settled(ctx: ChannelContext, state: ChannelState | None, inp: ChainSettled) -> Result:
    if state is None or state.phase not in MONEY_PHASES:
        return state, NO_OUTPUTS
    if inp.cooperative:
        new = state.moved_to(Phase.CLOSED)
    else:
        new = state.moved_to(Phase.DISPUTED).moved_to(Phase.SETTLED)
    new = replace(new, final_balance_a=inp.balance_a, final_balance_b=inp.balance_b, pending_tx=())
    event = ChannelClosed(new.channel_id, inp.balance_a, inp.balance_b, inp.cooperative)
    return new, (Notify(event),)


# -- our transactions


def tx_mined(ctx: ChannelContext, state: ChannelState | None, inp: TxMined) -> Result:
    """A receipt, in logs written before 2026-12-07; it changes nothing.

    A transaction stays pending until the chain's event for it arrives (`chain_opened`,
    `chain_deposited`, `chain_closing`, `chain_challenged`, `chain_settled`): between
    its receipt and that event the state still shows the chain before it, and a tick
    in that gap sent the challenge or the settle a second time, to revert."""
    return state, NO_OUTPUTS


def tx_failed(ctx: ChannelContext, state: ChannelState | None, inp: TxFailed) -> Result:
    if state is None:
        return state, NO_OUTPUTS
    new = state.without_pending(inp.kind)
    outputs: tuple[Output, ...] = (
        Notify(TransactionFailed(state.channel_id, inp.kind, inp.reason)),
    )
    if inp.kind == "open" and new.phase is Phase.ACCEPTED:
        new = new.moved_to(Phase.EXPIRED)
        outputs += (Notify(ChannelExpired(new.channel_id)),)
    elif inp.kind == "cooperative_close" and new.phase is Phase.CLOSING:
        new, closing = close_unilaterally(new)
        outputs += closing
    return new, outputs


# -- time


def tick(ctx: ChannelContext, state: ChannelState | None, inp: Tick) -> Result:
    if state is None:
        return state, NO_OUTPUTS
    phase = state.phase
    if phase in (Phase.PROPOSED, Phase.ACCEPTED):
        if inp.now_ms >= state.expires_at_ms and "open" not in state.pending_tx:
            return state.moved_to(Phase.EXPIRED), (Notify(ChannelExpired(state.channel_id)),)
        return state, NO_OUTPUTS
    if phase is Phase.CLOSING:
        close = state.close
        waited = inp.now_ms - close.started_at_ms if close else 0
        if waited >= ctx.config.close_timeout_ms and "cooperative_close" not in state.pending_tx:
            return close_unilaterally(state)
        return state, NO_OUTPUTS
    if phase is Phase.DISPUTED and state.onchain_close is not None:
        deadline = state.onchain_close.deadline
        if inp.chain_time <= deadline:
            return defend(state)
        grace = 0 if state.we_are_a else ctx.config.settle_grace_s
        if inp.chain_time > deadline + grace and "settle" not in state.pending_tx:
            new, submission = submit(
                state, SettleTx(**onchain_fields(state), closing=state.onchain_close)
            )
            return new, (submission,)
    return state, NO_OUTPUTS
