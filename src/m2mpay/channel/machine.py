"""`transition(ctx, state, input) -> (state, outputs)`: the channel protocol, pure.

No I/O, no clock, no randomness: what the outside world knows arrives in the
input. A refused input returns the state unchanged with a `Rejected` output
(and, for a peer's message, a `PeerError` back to it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from m2mpay.channel.closing import (
    chain_challenged,
    chain_closing,
    chain_settled,
    force_close,
    received_close_proposal,
    received_close_refusal,
    received_close_reply,
    request_close,
    tick,
    tx_failed,
    tx_mined,
)
from m2mpay.channel.context import ChannelContext
from m2mpay.channel.inputs import (
    Accept,
    ChainChallenged,
    ChainClosing,
    ChainDeposited,
    ChainOpened,
    ChainRewound,
    ChainSettled,
    Commit,
    ForceClose,
    Input,
    Pay,
    Propose,
    Received,
    Reject,
    RequestClose,
    Resync,
    Tick,
    TopUp,
    TxFailed,
    TxMined,
)
from m2mpay.channel.messages import (
    ChannelAccept,
    ChannelProposal,
    ChannelReject,
    ChannelSync,
    CloseProposal,
    CloseRefusal,
    CloseReply,
    PaymentAck,
    PaymentMessage,
    PeerError,
)
from m2mpay.channel.opening import (
    accept,
    chain_deposited,
    chain_opened,
    propose,
    received_accept,
    received_proposal,
    received_reject,
    reject,
    top_up,
)
from m2mpay.channel.outputs import (
    ErrorCode,
    Output,
    Rejected,
    Send,
)
from m2mpay.channel.paying import (
    commit,
    pay,
    received_ack,
    received_payment,
    received_peer_error,
    received_sync,
    resync,
)
from m2mpay.channel.rewinding import chain_rewound
from m2mpay.channel.rules import Result, channel_key
from m2mpay.channel.state import ChannelState

__all__ = ["Result", "channel_key", "is_refusal", "transition"]


def transition(ctx: ChannelContext, state: ChannelState | None, inp: Input) -> Result:
    """Apply one input to one channel's state."""
    if isinstance(inp, Received):
        handler = _MESSAGE_HANDLERS.get(type(inp.message))
        if handler is None:
            return state, (
                Rejected(
                    ErrorCode.MALFORMED, f"{type(inp.message).__name__} is not a message", None
                ),
            )
        return handler(ctx, state, inp)
    return _INPUT_HANDLERS[type(inp)](ctx, state, inp)


def is_refusal(
    before: ChannelState | None, after: ChannelState | None, outputs: tuple[Output, ...]
) -> bool:
    """True when the input was refused: nothing changed, so nothing needs logging.

    A refusal's only outputs are the `Rejected` itself and the error told to the peer.
    """
    if after is not before:
        return False
    return all(
        isinstance(o, Rejected) or (isinstance(o, Send) and isinstance(o.message, PeerError))
        for o in outputs
    ) and any(isinstance(o, Rejected) for o in outputs)


_INPUT_HANDLERS: Final[dict[type[Any], Callable[..., Result]]] = {
    Propose: propose,
    Accept: accept,
    Reject: reject,
    Pay: pay,
    Commit: commit,
    TopUp: top_up,
    RequestClose: request_close,
    ForceClose: force_close,
    Resync: resync,
    ChainOpened: chain_opened,
    ChainDeposited: chain_deposited,
    ChainClosing: chain_closing,
    ChainChallenged: chain_challenged,
    ChainSettled: chain_settled,
    ChainRewound: chain_rewound,
    TxMined: tx_mined,
    TxFailed: tx_failed,
    Tick: tick,
}

_MESSAGE_HANDLERS: Final[dict[type[Any], Callable[..., Result]]] = {
    ChannelProposal: received_proposal,
    ChannelAccept: received_accept,
    ChannelReject: received_reject,
    PaymentMessage: received_payment,
    PaymentAck: received_ack,
    ChannelSync: received_sync,
    CloseProposal: received_close_proposal,
    CloseReply: received_close_reply,
    CloseRefusal: received_close_refusal,
    PeerError: received_peer_error,
}
