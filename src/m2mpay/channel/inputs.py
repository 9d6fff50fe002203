"""Inputs of the channel state machine: local requests, peer messages, chain facts, time.

Everything the machine needs from the outside world arrives in an input (the
clock as `now_ms`, randomness as `nonce`, the chain as decoded events), which
is what makes `transition` deterministic and the log replayable.
"""

from __future__ import annotations

from dataclasses import dataclass

from m2mpay.channel.messages import Message
from m2mpay.channel.state import OnchainClose
from m2mpay.crypto import Address
from m2mpay.plain import Bytes32, Text, Uint64, Uint256, plain_type

__all__ = [
    "Accept",
    "ChainChallenged",
    "ChainClosing",
    "ChainDeposited",
    "ChainOpened",
    "ChainRewound",
    "ChainSettled",
    "Commit",
    "ForceClose",
    "Input",
    "Pay",
    "Propose",
    "Received",
    "Reject",
    "RequestClose",
    "Resync",
    "Tick",
    "TopUp",
    "TxFailed",
    "TxMined",
]

# -- local requests


@plain_type("in.propose")
@dataclass(frozen=True, slots=True)
class Propose:
    """Offer a channel to `peer`, we being party a and funding `deposit`."""

    peer: Address
    asset: Address
    deposit: Uint256
    peer_deposit: Uint256
    challenge_period: Uint64
    nonce: Uint256
    now_ms: Uint64
    ttl_ms: Uint64


@plain_type("in.accept")
@dataclass(frozen=True, slots=True)
class Accept:
    channel_id: Bytes32


@plain_type("in.reject")
@dataclass(frozen=True, slots=True)
class Reject:
    channel_id: Bytes32
    reason: Text


@plain_type("in.pay")
@dataclass(frozen=True, slots=True)
class Pay:
    channel_id: Bytes32
    amount: Uint256


@plain_type("in.commit")
@dataclass(frozen=True, slots=True)
class Commit:
    """Sign a running total `amount` above our last, for the application to deliver
    (an HTTP payment's commitment) rather than the wire: the payee takes it from there."""

    channel_id: Bytes32
    amount: Uint256


@plain_type("in.top_up")
@dataclass(frozen=True, slots=True)
class TopUp:
    channel_id: Bytes32
    amount: Uint256


@plain_type("in.request_close")
@dataclass(frozen=True, slots=True)
class RequestClose:
    """Close cooperatively; falls back to a unilateral close after the close timeout."""

    channel_id: Bytes32
    now_ms: Uint64


@plain_type("in.force_close")
@dataclass(frozen=True, slots=True)
class ForceClose:
    """Close unilaterally now, with the newest proof we hold."""

    channel_id: Bytes32


@plain_type("in.resync")
@dataclass(frozen=True, slots=True)
class Resync:
    """A peer link with the peer (re)started: tell it what we sent and received."""

    channel_id: Bytes32


# -- from the peer


@plain_type("in.received")
@dataclass(frozen=True, slots=True)
class Received:
    """A message from `sender`, whose address the peer link has authenticated."""

    sender: Address
    message: Message
    now_ms: Uint64


# -- from the chain (decoded ChannelHub events)


@plain_type("in.chain_opened")
@dataclass(frozen=True, slots=True)
class ChainOpened:
    """Carries the full terms, so a channel we take part in is tracked even if we lost it."""

    channel_id: Bytes32
    a: Address
    b: Address
    asset: Address
    challenge_period: Uint64
    nonce: Uint256
    deposit_a: Uint256
    block_number: Uint64


@plain_type("in.chain_deposited")
@dataclass(frozen=True, slots=True)
class ChainDeposited:
    channel_id: Bytes32
    participant: Address
    deposit_a: Uint256
    deposit_b: Uint256
    block_number: Uint64


@plain_type("in.chain_closing")
@dataclass(frozen=True, slots=True)
class ChainClosing:
    channel_id: Bytes32
    closer: Address
    transferred_a: Uint256
    transferred_b: Uint256
    deadline: Uint64
    block_number: Uint64


@plain_type("in.chain_challenged")
@dataclass(frozen=True, slots=True)
class ChainChallenged:
    channel_id: Bytes32
    transferred_a: Uint256
    transferred_b: Uint256
    deadline: Uint64
    block_number: Uint64


@plain_type("in.chain_settled")
@dataclass(frozen=True, slots=True)
class ChainSettled:
    channel_id: Bytes32
    balance_a: Uint256
    balance_b: Uint256
    cooperative: bool
    block_number: Uint64


@plain_type("in.chain_rewound")
@dataclass(frozen=True, slots=True)
class ChainRewound:
    """A reorganisation retracted chain events about the channel: what the chain shows
    of it in the blocks before `block_number`. Events from that block on arrive again
    as ordinary inputs, as the new chain holds them.

    Built from the chain's events by `m2mpay.channel.rewinding.chain_view`.
    """

    channel_id: Bytes32
    block_number: Uint64
    opened: bool
    deposit_a: Uint256
    deposit_b: Uint256
    closing: OnchainClose | None
    settled: bool
    balance_a: Uint256
    balance_b: Uint256
    cooperative: bool
    now_ms: Uint64


# -- our transactions


@plain_type("in.tx_mined")
@dataclass(frozen=True, slots=True)
class TxMined:
    channel_id: Bytes32
    kind: Text


@plain_type("in.tx_failed")
@dataclass(frozen=True, slots=True)
class TxFailed:
    channel_id: Bytes32
    kind: Text
    reason: Text


# -- time


@plain_type("in.tick")
@dataclass(frozen=True, slots=True)
class Tick:
    """Wall clock (for protocol timeouts) and chain clock (for challenge deadlines)."""

    channel_id: Bytes32
    now_ms: Uint64
    chain_time: Uint64


Input = (
    Propose
    | Accept
    | Reject
    | Pay
    | Commit
    | TopUp
    | RequestClose
    | ForceClose
    | Resync
    | Received
    | ChainOpened
    | ChainDeposited
    | ChainClosing
    | ChainChallenged
    | ChainSettled
    | ChainRewound
    | TxMined
    | TxFailed
    | Tick
)
