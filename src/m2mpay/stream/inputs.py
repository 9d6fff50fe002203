"""Inputs of the session machine: the application, the peer, the meter, the channel, time."""

from __future__ import annotations

from dataclasses import dataclass

from m2mpay.crypto import Address
from m2mpay.plain import Blob, Bytes32, Text, Uint64, Uint256, plain_type
from m2mpay.stream.messages import SessionMessage, SessionRequest
from m2mpay.stream.offer import Offer

__all__ = [
    "ChannelTotals",
    "ExtendSession",
    "MeterReading",
    "PayFailed",
    "RequestReceived",
    "Reverse",
    "SessionInput",
    "SessionReceived",
    "SessionTick",
    "SetPrice",
    "StartSession",
    "StopSession",
]


@plain_type("sin.start")
@dataclass(frozen=True, slots=True)
class StartSession:
    """The buyer starts a session on `offer` over `channel_id`; bases are the channel's
    running totals now (ours to the seller, the seller's to us). `supplies` names the
    session of ours this purchase supplies (a reseller's sale), so that the link is
    logged with the purchase itself and survives a crash. `supply_terms` goes to the
    seller's device with the request (see `SessionRequest`)."""

    session_id: Bytes32
    offer: Offer
    channel_id: Bytes32
    limit_price: Uint256
    budget: Uint256
    target_units: Uint64
    allow_reverse: bool
    buyer_sent_base: Uint256
    seller_sent_base: Uint256
    now_ms: Uint64
    supplies: Bytes32 | None = None
    supply_terms: Blob = b""


@plain_type("sin.request")
@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A buyer's request, with what the seller's node knows that the machine needs:
    the offer it names (None if unknown), the channel it would use, and why the
    offer's device refuses the request's supply terms (empty: it does not)."""

    sender: Address
    request: SessionRequest
    offer: Offer | None
    channel_peer: Address | None  # None: no such open channel
    channel_asset: Address | None
    seller_sent_total: Uint256  # what we, the seller, have paid the buyer on the channel
    buyer_sent_total: Uint256  # what we have seen the buyer pay us on the channel
    channel_busy: bool
    now_ms: Uint64
    supply_problem: Text = ""


@plain_type("sin.extend")
@dataclass(frozen=True, slots=True)
class ExtendSession:
    """The buyer wants more of a running session (see `SessionExtend`)."""

    session_id: Bytes32
    target_units: Uint64
    budget: Uint256
    now_ms: Uint64


@plain_type("sin.received")
@dataclass(frozen=True, slots=True)
class SessionReceived:
    sender: Address
    message: SessionMessage
    now_ms: Uint64


@plain_type("sin.meter")
@dataclass(frozen=True, slots=True)
class MeterReading:
    """The deliverer's meter: units delivered so far in one direction."""

    session_id: Bytes32
    reversed: bool
    units: Uint64
    now_ms: Uint64


@plain_type("sin.channel")
@dataclass(frozen=True, slots=True)
class ChannelTotals:
    """The session's channel running totals as our node holds them (durable)."""

    session_id: Bytes32
    sent_total: Uint256
    received_total: Uint256
    now_ms: Uint64


@plain_type("sin.price")
@dataclass(frozen=True, slots=True)
class SetPrice:
    """The seller's price signal (a local power market, say)."""

    session_id: Bytes32
    price: Uint256
    now_ms: Uint64


@plain_type("sin.reverse")
@dataclass(frozen=True, slots=True)
class Reverse:
    """A signal to reverse the supply (a car feeding the grid) or to turn it back."""

    session_id: Bytes32
    reversed: bool
    now_ms: Uint64


@plain_type("sin.stop")
@dataclass(frozen=True, slots=True)
class StopSession:
    session_id: Bytes32
    reason: Text
    now_ms: Uint64


@plain_type("sin.pay_failed")
@dataclass(frozen=True, slots=True)
class PayFailed:
    """The channel refused one of our payments (not enough balance, channel closing…);
    `sent_total` is what the channel says we have paid the peer in all."""

    session_id: Bytes32
    reason: Text
    sent_total: Uint256
    now_ms: Uint64


@plain_type("sin.tick")
@dataclass(frozen=True, slots=True)
class SessionTick:
    """Time passes. `peer_seen_ms` is when the node last knew the peer to be there (its
    session connected, or a message from it): a peer is silent when that is old, not
    when it merely has nothing to say, as a buyer has while a meter stands still."""

    session_id: Bytes32
    now_ms: Uint64
    peer_seen_ms: Uint64 = 0


SessionInput = (
    StartSession
    | RequestReceived
    | SessionReceived
    | MeterReading
    | ChannelTotals
    | SetPrice
    | ExtendSession
    | Reverse
    | StopSession
    | PayFailed
    | SessionTick
)
