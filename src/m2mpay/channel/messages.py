"""Messages two channel peers exchange (protocol version 1).

Every message names the channel it is about. Only payments and closing splits
carry signatures, because only they move money; the rest travel over an
authenticated peer link (see `m2mpay.wire.peer_link`), which binds every frame
to the peer's address.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from m2mpay.crypto import Address, Signature, channel_id
from m2mpay.plain import Bytes32, Text, Uint64, Uint256, plain_type

__all__ = [
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "ChannelAccept",
    "ChannelProposal",
    "ChannelReject",
    "ChannelSync",
    "ChannelTerms",
    "CloseProposal",
    "CloseRefusal",
    "CloseReply",
    "Message",
    "PaymentAck",
    "PaymentMessage",
    "PeerError",
]

PROTOCOL_VERSION = 1


@plain_type("channel.terms")
@dataclass(frozen=True, slots=True)
class ChannelTerms:
    """What two parties agree on before a channel exists on chain.

    `a` proposes and funds `deposit_a` with the open transaction; `b` deposits
    `deposit_b` (possibly zero) once the open is on chain. The id is the one
    ChannelHub computes, so it is known before the channel exists.
    """

    chain_id: Uint64
    hub: Address
    a: Address
    b: Address
    asset: Address  # token address; the zero address for native ETH
    challenge_period: Uint64  # seconds
    nonce: Uint256
    deposit_a: Uint256
    deposit_b: Uint256

    @property
    def channel_id(self) -> bytes:
        return channel_id(self.a, self.b, self.asset, self.challenge_period, self.nonce)


@plain_type("channel.propose")
@dataclass(frozen=True, slots=True)
class ChannelProposal:
    """`terms.a` offers a channel to `terms.b`; it must be accepted and opened before expiry."""

    terms: ChannelTerms
    expires_at_ms: Uint64


@plain_type("channel.accept")
@dataclass(frozen=True, slots=True)
class ChannelAccept:
    channel_id: Bytes32


@plain_type("channel.reject")
@dataclass(frozen=True, slots=True)
class ChannelReject:
    channel_id: Bytes32
    reason: Text


@plain_type("pay")
@dataclass(frozen=True, slots=True)
class PaymentMessage:
    """A payment: the payer's new running total, signed as an EIP-712 BalanceProof.

    `amount` must equal the increase over the previous total and `seq` counts the
    payer's payments on this channel; both let the payee refuse a replay or a gap
    with a precise error. `chain_id` and `hub` repeat what the signature is bound
    to, so a proof for another chain or contract is refused by name.
    """

    channel_id: Bytes32
    chain_id: Uint64
    hub: Address
    total: Uint256
    amount: Uint256
    seq: Uint64
    signature: Signature


@plain_type("ack")
@dataclass(frozen=True, slots=True)
class PaymentAck:
    """The payee has made every payment up to `total` (payment `seq`) durable."""

    channel_id: Bytes32
    total: Uint256
    seq: Uint64


@plain_type("close.propose")
@dataclass(frozen=True, slots=True)
class CloseProposal:
    """A request to close cooperatively, with the split as the sender sees it.

    Unsigned on purpose: the responder answers with the split of its own view,
    signed, and the initiator signs only that one if it agrees. So neither party
    ever signs two different splits, and a payment in flight when the close
    began cannot be erased by settling an older signed split.
    """

    channel_id: Bytes32
    balance_a: Uint256
    balance_b: Uint256


@plain_type("close.reply")
@dataclass(frozen=True, slots=True)
class CloseReply:
    """The responder's signed split, computed from its own view of both totals."""

    channel_id: Bytes32
    balance_a: Uint256
    balance_b: Uint256
    signature: Signature


@plain_type("close.refuse")
@dataclass(frozen=True, slots=True)
class CloseRefusal:
    channel_id: Bytes32
    reason: Text


@plain_type("sync")
@dataclass(frozen=True, slots=True)
class ChannelSync:
    """Sent on every (re)connection: what the sender has sent and received.

    `sent_*` is the sender's own newest proof, so a payee that missed it (a
    crash after the payer sent it) catches up. `received_*` is the newest proof
    the sender holds from the recipient, signed by the recipient, so a payer that
    lost its own newest proof in a crash can take it back (it verifies its own
    signature; nothing else is trusted).
    """

    channel_id: Bytes32
    sent_total: Uint256
    sent_seq: Uint64
    sent_signature: Signature | None
    received_total: Uint256
    received_seq: Uint64
    received_signature: Signature | None


@plain_type("error")
@dataclass(frozen=True, slots=True)
class PeerError:
    """Tells the peer which of its messages was refused and why."""

    code: Text
    message: Text
    channel_id: Bytes32 | None = None


Message = (
    ChannelProposal
    | ChannelAccept
    | ChannelReject
    | PaymentMessage
    | PaymentAck
    | CloseProposal
    | CloseReply
    | CloseRefusal
    | ChannelSync
    | PeerError
)

# The classes a peer may send on a channel session; anything else that decodes (a
# registered type of another protocol) is refused before it reaches the machine.
MESSAGE_TYPES: tuple[type, ...] = typing.get_args(Message)
