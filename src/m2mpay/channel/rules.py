"""What every handler of the channel machine shares: refusals, transactions and defence."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import Input, Propose, Received
from m2mpay.channel.messages import (
    ChannelProposal,
    PeerError,
)
from m2mpay.channel.outputs import (
    ChallengeTx,
    ChannelDefended,
    CloseTx,
    ErrorCode,
    Notify,
    Output,
    Rejected,
    Send,
    Submit,
)
from m2mpay.channel.state import ChannelState, Phase
from m2mpay.crypto import Signature, balance_proof_digest, channel_id, recover_signer
from m2mpay.errors import InvalidSignature

__all__ = [
    "CLOSABLE_PHASES",
    "MONEY_PHASES",
    "NO_OUTPUTS",
    "OPENABLE_PHASES",
    "OPEN_PHASE",
    "Result",
    "channel_key",
    "check_peer_message",
    "close_unilaterally",
    "defend",
    "local_request_in",
    "message_channel",
    "onchain_fields",
    "peer_message_in",
    "proof_signer",
    "refuse",
    "refuse_peer",
    "submit",
]

Result = tuple[ChannelState | None, tuple[Output, ...]]
NO_OUTPUTS: Final[tuple[Output, ...]] = ()
OPEN_PHASE: Final = frozenset({Phase.OPEN})
MONEY_PHASES: Final = frozenset({Phase.OPEN, Phase.CLOSING, Phase.DISPUTED})
CLOSABLE_PHASES: Final = frozenset({Phase.OPEN, Phase.CLOSING})
OPENABLE_PHASES: Final = frozenset({Phase.PROPOSED, Phase.ACCEPTED, Phase.EXPIRED, Phase.REJECTED})

# -- helpers


def refuse(
    state: ChannelState | None, code: ErrorCode, message: str, channel: bytes | None
) -> Result:
    return state, (Rejected(code, message, channel),)


def refuse_peer(state: ChannelState | None, inp: Received, code: ErrorCode, message: str) -> Result:
    """Refuse a peer's message, and tell the peer why (never in answer to its own error)."""
    channel = message_channel(inp)
    outputs: tuple[Output, ...] = (Rejected(code, message, channel),)
    if not isinstance(inp.message, PeerError):
        outputs += (Send(inp.sender, PeerError(code.value, message, channel)),)
    return state, outputs


def message_channel(inp: Received) -> bytes | None:
    message = inp.message
    if isinstance(message, ChannelProposal):
        return message.terms.channel_id
    return message.channel_id


def check_peer_message(
    state: ChannelState | None, inp: Received, phases: frozenset[Phase]
) -> Result | None:
    """Common refusals for a message about an existing channel; None if it may proceed."""
    if state is None:
        return refuse_peer(state, inp, ErrorCode.UNKNOWN_CHANNEL, "no such channel")
    if inp.sender != state.peer:
        return refuse_peer(state, inp, ErrorCode.NOT_A_PARTY, "sender is not the peer")
    if state.phase not in phases:
        return refuse_peer(state, inp, ErrorCode.INVALID_PHASE, f"channel is {state.phase.value}")
    return None


MessageHandler = Callable[[ChannelContext, ChannelState | None, Received], Result]
PeerMessageHandler = Callable[[ChannelContext, ChannelState, Received], Result]


def peer_message_in(phases: frozenset[Phase]) -> Callable[[PeerMessageHandler], MessageHandler]:
    """For a handler of a peer's message about an existing channel: the common refusals of
    `check_peer_message` come first, so the handler only sees the peer's channel in `phases`."""

    def checked_first(handler: PeerMessageHandler) -> MessageHandler:
        @functools.wraps(handler)
        def checked(ctx: ChannelContext, state: ChannelState | None, inp: Received) -> Result:
            refused = check_peer_message(state, inp, phases)
            if refused:
                return refused
            assert state is not None
            return handler(ctx, state, inp)

        return checked

    return checked_first


class _ChannelRequest(Protocol):
    @property
    def channel_id(self) -> bytes: ...


R = TypeVar("R", bound=_ChannelRequest)


def local_request_in(
    phases: frozenset[Phase],
) -> Callable[
    [Callable[[ChannelContext, ChannelState, R], Result]],
    Callable[[ChannelContext, ChannelState | None, R], Result],
]:
    """For a handler of our own request on a channel: refused unless the channel exists and
    is in `phases`, so the handler only sees such a channel."""

    def checked_first(
        handler: Callable[[ChannelContext, ChannelState, R], Result],
    ) -> Callable[[ChannelContext, ChannelState | None, R], Result]:
        @functools.wraps(handler)
        def checked(ctx: ChannelContext, state: ChannelState | None, inp: R) -> Result:
            if state is None:
                return refuse(state, ErrorCode.UNKNOWN_CHANNEL, "no such channel", inp.channel_id)
            if state.phase not in phases:
                return refuse(
                    state,
                    ErrorCode.INVALID_PHASE,
                    f"channel is {state.phase.value}",
                    inp.channel_id,
                )
            return handler(ctx, state, inp)

        return checked

    return checked_first


def onchain_fields(state: ChannelState) -> dict[str, Any]:
    return {"terms": state.terms, "deposit_a": state.deposit_a, "deposit_b": state.deposit_b}


def submit(state: ChannelState, tx: Any) -> tuple[ChannelState, Output]:
    return state.with_pending(tx.kind), Submit(state.channel_id, tx)


def close_unilaterally(state: ChannelState) -> tuple[ChannelState, tuple[Output, ...]]:
    """Submit a unilateral close with our total and the newest proof the peer signed."""
    if "close" in state.pending_tx or state.phase not in CLOSABLE_PHASES:
        return state, NO_OUTPUTS
    tx = CloseTx(
        **onchain_fields(state),
        transferred_a=state.transferred_a,
        transferred_b=state.transferred_b,
        peer_proof=state.received_signature if state.received_total else None,
    )
    state, output = submit(state, tx)
    return state, (output,)


def defend(state: ChannelState) -> tuple[ChannelState, tuple[Output, ...]]:
    """If the chain holds an older total of the peer's than our proof, submit ours."""
    closing = state.onchain_close
    if closing is None or "challenge" in state.pending_tx or state.received_signature is None:
        return state, NO_OUTPUTS
    recorded = closing.transferred_b if state.we_are_a else closing.transferred_a
    if state.received_total <= recorded:
        return state, NO_OUTPUTS
    tx = ChallengeTx(
        **onchain_fields(state),
        closing=closing,
        participant=state.peer,
        transferred=state.received_total,
        proof=state.received_signature,
    )
    state, output = submit(state, tx)
    return state, (
        output,
        Notify(ChannelDefended(state.channel_id, state.peer, state.received_total)),
    )


def proof_signer(ctx: ChannelContext, state: ChannelState, total: int, sig: Signature) -> Any:
    try:
        return recover_signer(balance_proof_digest(ctx.domain, state.channel_id, total), sig)
    except InvalidSignature:
        return None


def channel_key(ctx: ChannelContext, inp: Input) -> bytes | None:
    """The id of the channel an input is about (None for a peer error about no channel)."""
    if isinstance(inp, Propose):
        channel: bytes = channel_id(ctx.me, inp.peer, inp.asset, inp.challenge_period, inp.nonce)
        return channel
    if isinstance(inp, Received):
        return message_channel(inp)
    return inp.channel_id
