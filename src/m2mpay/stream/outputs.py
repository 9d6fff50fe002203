"""Outputs of the session machine: messages, payments, delivery permits, events."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from m2mpay.crypto import Address
from m2mpay.plain import Bytes32, Text, Uint64, Uint256, plain_type
from m2mpay.stream.messages import FlowTotals, SessionMessage

__all__ = [
    "Allow",
    "PayUpTo",
    "PriceAgreed",
    "Reversed",
    "SendSession",
    "SessionCode",
    "SessionEvent",
    "SessionNotify",
    "SessionOutput",
    "SessionRefused",
    "SessionStarted",
    "SessionStopped",
]


class SessionCode(enum.Enum):
    UNKNOWN_SESSION = "unknown_session"
    UNKNOWN_OFFER = "unknown_offer"
    INVALID_OFFER = "invalid_offer"
    UNKNOWN_CHANNEL = "unknown_channel"
    CHANNEL_BUSY = "channel_busy"
    NOT_A_PARTY = "not_a_party"
    INVALID_PHASE = "invalid_phase"
    PRICE_ABOVE_LIMIT = "price_above_limit"
    PRICE_IN_THE_PAST = "price_in_the_past"
    REVERSE_NOT_AGREED = "reverse_not_agreed"
    REPORT_MISMATCH = "report_mismatch"
    REPORT_BEYOND_WINDOW = "report_beyond_window"
    PAYMENT_BEYOND_WINDOW = "payment_beyond_window"
    RECEIPT_MISMATCH = "receipt_mismatch"
    BAD_SIGNATURE = "bad_signature"
    SUPPLY_REFUSED = "supply_refused"  # the seller's device refuses the request's terms
    INVALID_EXTENSION = "invalid_extension"


@plain_type("sout.send")
@dataclass(frozen=True, slots=True)
class SendSession:
    peer: Address
    message: SessionMessage


@plain_type("sout.pay")
@dataclass(frozen=True, slots=True)
class PayUpTo:
    """Pay on the channel until this session's flow has received `total` from us.

    A target, not an amount, so doing it twice (say after a restart) pays once.
    """

    session_id: Bytes32
    channel_id: Bytes32
    reversed: bool
    total: Uint256


@plain_type("sout.allow")
@dataclass(frozen=True, slots=True)
class Allow:
    """The deliverer's meter may go up to `units` in this direction."""

    session_id: Bytes32
    reversed: bool
    units: Uint64


@plain_type("sev.started")
@dataclass(frozen=True, slots=True)
class SessionStarted:
    session_id: Bytes32
    price: Uint256


@plain_type("sev.stopped")
@dataclass(frozen=True, slots=True)
class SessionStopped:
    """Final: the totals both parties signed (or we alone, if the peer fell silent)."""

    session_id: Bytes32
    reason: Text
    forward: FlowTotals
    backward: FlowTotals
    countersigned: bool


@plain_type("sev.price")
@dataclass(frozen=True, slots=True)
class PriceAgreed:
    session_id: Bytes32
    price: Uint256
    from_unit: Uint64


@plain_type("sev.reversed")
@dataclass(frozen=True, slots=True)
class Reversed:
    session_id: Bytes32
    reversed: bool


SessionEvent = SessionStarted | SessionStopped | PriceAgreed | Reversed


@plain_type("sout.notify")
@dataclass(frozen=True, slots=True)
class SessionNotify:
    event: SessionEvent


@plain_type("sout.refused")
@dataclass(frozen=True, slots=True)
class SessionRefused:
    code: SessionCode
    message: Text
    session_id: Bytes32 | None = None


SessionOutput = SendSession | PayUpTo | Allow | SessionNotify | SessionRefused
