"""Messages of metered sessions, exchanged over the same peer links as channel messages.

Money never moves in these messages: payments are channel payments, one
signature each. These messages say what was delivered, at what price, and when
the session ends; the receipt closing a session is signed by both parties.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Final

from m2mpay.crypto import Signature
from m2mpay.plain import Blob, Bytes32, Text, Uint64, Uint256, plain_type

__all__ = [
    "SESSION_MESSAGE_TYPES",
    "DeliveryReport",
    "FlowTotals",
    "PriceAnswer",
    "PriceChange",
    "SessionAccepted",
    "SessionError",
    "SessionExtend",
    "SessionMessage",
    "SessionRejected",
    "SessionRequest",
    "SessionReverse",
    "SessionStop",
    "SignedReceipt",
]


@plain_type("session.flow_totals")
@dataclass(frozen=True, slots=True)
class FlowTotals:
    """One direction of a session: units delivered, their value, and what was paid."""

    units: Uint64
    value: Uint256
    paid: Uint256


@plain_type("session.request")
@dataclass(frozen=True, slots=True)
class SessionRequest:
    """A buyer starts a session on an offer, over a channel it has with the seller.

    The bases are the channel's running totals at the start (the buyer's paid to
    the seller and the seller's paid to the buyer): the session's payments are
    what the totals rise by afterwards. `supply_terms` is what the buyer tells the
    seller's device, opaque to the session (for a data feed: the MQTT credentials the
    buyer wants, sealed to the seller); the seller's device may refuse them.
    """

    session_id: Bytes32
    offer_id: Bytes32
    channel_id: Bytes32
    limit_price: Uint256
    budget: Uint256
    target_units: Uint64
    allow_reverse: bool
    buyer_sent_base: Uint256
    seller_sent_base: Uint256
    at_ms: Uint64
    supply_terms: Blob = b""


@plain_type("session.accepted")
@dataclass(frozen=True, slots=True)
class SessionAccepted:
    session_id: Bytes32
    price: Uint256
    at_ms: Uint64


@plain_type("session.rejected")
@dataclass(frozen=True, slots=True)
class SessionRejected:
    session_id: Bytes32
    reason: Text


@plain_type("session.report")
@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """The deliverer's meter: cumulative units and their value in one direction."""

    session_id: Bytes32
    reversed: bool
    units: Uint64
    value: Uint256
    final: bool


@plain_type("session.price")
@dataclass(frozen=True, slots=True)
class PriceChange:
    """The seller's new price for units from `from_unit` on; none is delivered before an answer."""

    session_id: Bytes32
    price: Uint256
    from_unit: Uint64


@plain_type("session.price_answer")
@dataclass(frozen=True, slots=True)
class PriceAnswer:
    session_id: Bytes32
    from_unit: Uint64
    accepted: bool


@plain_type("session.reverse")
@dataclass(frozen=True, slots=True)
class SessionReverse:
    """Switch the direction of supply (and so of payment)."""

    session_id: Bytes32
    reversed: bool


@plain_type("session.extend")
@dataclass(frozen=True, slots=True)
class SessionExtend:
    """The buyer wants more of a running session: a new target and budget, never lower
    than before (0 stays "no limit"). A buyer that pays first pays ahead for them."""

    session_id: Bytes32
    target_units: Uint64
    budget: Uint256


@plain_type("session.stop")
@dataclass(frozen=True, slots=True)
class SessionStop:
    session_id: Bytes32
    reason: Text
    at_ms: Uint64


@plain_type("session.receipt")
@dataclass(frozen=True, slots=True)
class SignedReceipt:
    """What a party signs at the end: both directions' totals and the session's times."""

    session_id: Bytes32
    channel_id: Bytes32
    forward: FlowTotals
    backward: FlowTotals
    started_ms: Uint64
    stopped_ms: Uint64
    signature: Signature


@plain_type("session.error")
@dataclass(frozen=True, slots=True)
class SessionError:
    session_id: Bytes32 | None
    code: Text
    message: Text


SessionMessage = (
    SessionRequest
    | SessionAccepted
    | SessionRejected
    | DeliveryReport
    | PriceChange
    | PriceAnswer
    | SessionReverse
    | SessionExtend
    | SessionStop
    | SignedReceipt
    | SessionError
)
SESSION_MESSAGE_TYPES: Final[tuple[type, ...]] = typing.get_args(SessionMessage)
