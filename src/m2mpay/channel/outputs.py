"""Outputs of the channel state machine: what the node must do, and what happened.

The machine never acts; it returns these. The node makes the input and its
outputs durable first, then performs them in one dispatcher (send, submit a
transaction, tell the application).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from m2mpay.channel.messages import ChannelTerms, Message
from m2mpay.channel.state import OnchainClose
from m2mpay.crypto import Address, Signature
from m2mpay.plain import Bytes32, Text, Uint64, Uint256, plain_type

__all__ = [
    "ChainReorganised",
    "ChallengeTx",
    "ChannelAccepted",
    "ChannelClosed",
    "ChannelDefended",
    "ChannelDisputed",
    "ChannelEvent",
    "ChannelExpired",
    "ChannelOpened",
    "ChannelRejected",
    "CloseStarted",
    "CloseTx",
    "CooperativeCloseTx",
    "DepositConfirmed",
    "DepositTx",
    "ErrorCode",
    "Notify",
    "OpenTx",
    "Output",
    "PaymentAcknowledged",
    "PaymentReceived",
    "PeerReportedError",
    "ProposalReceived",
    "Rejected",
    "Send",
    "SettleTx",
    "Submit",
    "TransactionFailed",
    "TxRequest",
]


class ErrorCode(enum.Enum):
    """Why an input was refused. Stable strings: they travel to peers and API clients."""

    UNKNOWN_CHANNEL = "unknown_channel"
    DUPLICATE_CHANNEL = "duplicate_channel"
    NOT_A_PARTY = "not_a_party"
    WRONG_CHAIN = "wrong_chain"
    WRONG_CONTRACT = "wrong_contract"
    INVALID_PHASE = "invalid_phase"
    INVALID_PROPOSAL = "invalid_proposal"
    NON_POSITIVE_AMOUNT = "non_positive_amount"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    OVERDRAFT = "overdraft"
    STALE_PROOF = "stale_proof"
    AMOUNT_MISMATCH = "amount_mismatch"
    BAD_SIGNATURE = "bad_signature"
    BAD_ACK = "bad_ack"
    CLOSE_MISMATCH = "close_mismatch"
    MALFORMED = "malformed"


# -- transactions the node submits (each carries the on-chain pre-image it needs)


@dataclass(frozen=True, slots=True)
class _OnOpenChannel:
    """A transaction on an opened channel carries the channel's storage pre-image: its terms
    and the deposits the chain recorded (`OnchainChannel`)."""

    terms: ChannelTerms
    deposit_a: Uint256
    deposit_b: Uint256


@plain_type("tx.open")
@dataclass(frozen=True, slots=True)
class OpenTx:
    terms: ChannelTerms

    kind = "open"


@plain_type("tx.deposit")
@dataclass(frozen=True, slots=True)
class DepositTx(_OnOpenChannel):
    participant: Address
    amount: Uint256

    kind = "deposit"


@plain_type("tx.cooperative_close")
@dataclass(frozen=True, slots=True)
class CooperativeCloseTx(_OnOpenChannel):
    balance_a: Uint256
    balance_b: Uint256
    signature_a: Signature
    signature_b: Signature

    kind = "cooperative_close"


@plain_type("tx.close")
@dataclass(frozen=True, slots=True)
class CloseTx(_OnOpenChannel):
    transferred_a: Uint256
    transferred_b: Uint256
    peer_proof: Signature | None

    kind = "close"


@plain_type("tx.challenge")
@dataclass(frozen=True, slots=True)
class ChallengeTx(_OnOpenChannel):
    closing: OnchainClose
    participant: Address
    transferred: Uint256
    proof: Signature

    kind = "challenge"


@plain_type("tx.settle")
@dataclass(frozen=True, slots=True)
class SettleTx(_OnOpenChannel):
    closing: OnchainClose

    kind = "settle"


TxRequest = OpenTx | DepositTx | CooperativeCloseTx | CloseTx | ChallengeTx | SettleTx

# -- events for the application


@plain_type("ev.proposal_received")
@dataclass(frozen=True, slots=True)
class ProposalReceived:
    channel_id: Bytes32
    terms: ChannelTerms
    expires_at_ms: Uint64


@plain_type("ev.accepted")
@dataclass(frozen=True, slots=True)
class ChannelAccepted:
    channel_id: Bytes32


@plain_type("ev.rejected")
@dataclass(frozen=True, slots=True)
class ChannelRejected:
    channel_id: Bytes32
    reason: Text


@plain_type("ev.expired")
@dataclass(frozen=True, slots=True)
class ChannelExpired:
    channel_id: Bytes32


@plain_type("ev.opened")
@dataclass(frozen=True, slots=True)
class ChannelOpened:
    channel_id: Bytes32
    deposit_a: Uint256
    deposit_b: Uint256


@plain_type("ev.deposit_confirmed")
@dataclass(frozen=True, slots=True)
class DepositConfirmed:
    channel_id: Bytes32
    deposit_a: Uint256
    deposit_b: Uint256


@plain_type("ev.payment_received")
@dataclass(frozen=True, slots=True)
class PaymentReceived:
    channel_id: Bytes32
    amount: Uint256
    total: Uint256
    seq: Uint64


@plain_type("ev.payment_acknowledged")
@dataclass(frozen=True, slots=True)
class PaymentAcknowledged:
    channel_id: Bytes32
    total: Uint256
    seq: Uint64


@plain_type("ev.close_started")
@dataclass(frozen=True, slots=True)
class CloseStarted:
    channel_id: Bytes32
    initiator: bool


@plain_type("ev.disputed")
@dataclass(frozen=True, slots=True)
class ChannelDisputed:
    channel_id: Bytes32
    closer: Address
    deadline: Uint64
    transferred_a: Uint256
    transferred_b: Uint256


@plain_type("ev.defended")
@dataclass(frozen=True, slots=True)
class ChannelDefended:
    """We submitted a newer proof than the one a unilateral close used."""

    channel_id: Bytes32
    participant: Address
    transferred: Uint256


@plain_type("ev.closed")
@dataclass(frozen=True, slots=True)
class ChannelClosed:
    channel_id: Bytes32
    balance_a: Uint256
    balance_b: Uint256
    cooperative: bool


@plain_type("ev.tx_failed")
@dataclass(frozen=True, slots=True)
class TransactionFailed:
    channel_id: Bytes32
    kind: Text
    reason: Text


@plain_type("ev.reorganised")
@dataclass(frozen=True, slots=True)
class ChainReorganised:
    """A chain reorganisation changed what the chain shows of the channel: this is
    what it shows now (the node's view was set back to it)."""

    channel_id: Bytes32
    phase: Text
    deposit_a: Uint256
    deposit_b: Uint256


@plain_type("ev.peer_error")
@dataclass(frozen=True, slots=True)
class PeerReportedError:
    channel_id: Bytes32 | None
    code: Text
    message: Text


ChannelEvent = (
    ProposalReceived
    | ChannelAccepted
    | ChannelRejected
    | ChannelExpired
    | ChannelOpened
    | DepositConfirmed
    | PaymentReceived
    | PaymentAcknowledged
    | CloseStarted
    | ChannelDisputed
    | ChannelDefended
    | ChannelClosed
    | TransactionFailed
    | PeerReportedError
    | ChainReorganised
)

# -- outputs


@plain_type("out.send")
@dataclass(frozen=True, slots=True)
class Send:
    peer: Address
    message: Message


@plain_type("out.submit")
@dataclass(frozen=True, slots=True)
class Submit:
    channel_id: Bytes32
    tx: TxRequest


@plain_type("out.notify")
@dataclass(frozen=True, slots=True)
class Notify:
    event: ChannelEvent


@plain_type("out.rejected")
@dataclass(frozen=True, slots=True)
class Rejected:
    """The input was refused and changed nothing."""

    code: ErrorCode
    message: Text
    channel_id: Bytes32 | None = None


Output = Send | Submit | Notify | Rejected
