"""One device connection as a pure state machine: `step(connection, input)`.

The bus feeds it what arrives on the socket and the clock's verdicts and performs
what it returns; nothing here touches a socket, a store or a clock. A connection
is challenged until the device proves its key, then ready until it closes. Before
login the first bad message ends the connection (a challenge is good for one try);
after login a bad message gets an `error` and changes nothing, and only a long run
of them closes the connection.

Outputs are replies to send, a close, and facts for the bus to act on (log in a
device, store its services, an acknowledgment, a meter reading, a telemetry
record); the bus answers those once what they change is durable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final

from m2mpay.bus.events import CommandAcknowledged
from m2mpay.bus.messages import (
    BadMessage,
    BusMessage,
    ChallengeMessage,
    CommandAckMessage,
    DeviceMessage,
    DeviceRegisterMessage,
    DeviceStatusMessage,
    ErrorMessage,
    LoginMessage,
    TelemetryMessage,
    login_digest,
    parse_device_message,
)
from m2mpay.crypto import Address, Signature, recover_signer
from m2mpay.errors import CryptoError

__all__ = [
    "CLOSE_POLICY",
    "CLOSE_REPLACED",
    "BusOutput",
    "Close",
    "Connection",
    "ConnectionInput",
    "ConnectionPhase",
    "LoggedIn",
    "LoginTimedOut",
    "Received",
    "Registered",
    "Send",
    "StatusReported",
    "TelemetryReceived",
    "open_connection",
    "step",
]

CLOSE_POLICY: Final = 1008  # RFC 6455: policy violation
CLOSE_REPLACED: Final = 4001  # the device logged in again on another connection
MAX_BAD_MESSAGES: Final = 20  # in a row, after login


class ConnectionPhase(enum.Enum):
    CHALLENGED = "challenged"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Connection:
    phase: ConnectionPhase
    server: Address
    challenge: bytes
    expires_ms: int
    allowed: frozenset[Address] | None = None  # None: any device that proves its key
    device: Address | None = None
    bad_in_a_row: int = 0


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class Received:
    data: str | bytes
    now_ms: int


@dataclass(frozen=True, slots=True)
class LoginTimedOut:
    now_ms: int


ConnectionInput = Received | LoginTimedOut


# ------------------------------------------------------------------ outputs


@dataclass(frozen=True, slots=True)
class Send:
    message: BusMessage


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    device: Address


@dataclass(frozen=True, slots=True)
class Registered:
    device: Address
    message: DeviceRegisterMessage


@dataclass(frozen=True, slots=True)
class StatusReported:
    device: Address
    message: DeviceStatusMessage


@dataclass(frozen=True, slots=True)
class TelemetryReceived:
    device: Address
    message: TelemetryMessage


# A device's answer to a command is the bus's own event, passed on once the command
# it answers is settled in the store.
BusOutput = (
    Send | Close | LoggedIn | Registered | CommandAcknowledged | StatusReported | TelemetryReceived
)


# ------------------------------------------------------------------ transitions


def open_connection(
    server: Address,
    challenge: bytes,
    now_ms: int,
    ttl_ms: int,
    allowed: frozenset[Address] | None = None,
) -> tuple[Connection, tuple[BusOutput, ...]]:
    """A new connection and the challenge it starts with (`challenge`: 32 random bytes)."""
    if len(challenge) != 32:
        raise ValueError("a challenge is 32 bytes")
    connection = Connection(ConnectionPhase.CHALLENGED, server, challenge, now_ms + ttl_ms, allowed)
    hello = ChallengeMessage(
        server=server.checksum, challenge="0x" + challenge.hex(), expires_ms=now_ms + ttl_ms
    )
    return connection, (Send(hello),)


def _refuse(
    connection: Connection, code: str, message: str
) -> tuple[Connection, tuple[BusOutput, ...]]:
    """Refuse a login: say why, close, and never take another try on this challenge."""
    closed = replace(connection, phase=ConnectionPhase.CLOSED)
    return closed, (
        Send(ErrorMessage(code=code, message=message, ref="login")),
        Close(CLOSE_POLICY, code),
    )


def step(connection: Connection, inp: ConnectionInput) -> tuple[Connection, tuple[BusOutput, ...]]:
    if connection.phase is ConnectionPhase.CLOSED:
        return connection, ()
    if isinstance(inp, LoginTimedOut):
        if connection.phase is ConnectionPhase.CHALLENGED and inp.now_ms >= connection.expires_ms:
            return _refuse(connection, "challenge_expired", "no login before the challenge expired")
        return connection, ()
    try:
        message = parse_device_message(inp.data)
    except BadMessage as exc:
        return _bad(connection, exc)
    if connection.phase is ConnectionPhase.CHALLENGED:
        return _login(connection, message, inp.now_ms)
    return _ready(connection, message)


def _bad(connection: Connection, exc: BadMessage) -> tuple[Connection, tuple[BusOutput, ...]]:
    if connection.phase is ConnectionPhase.CHALLENGED:
        return _refuse(connection, exc.code, exc.message)
    count = connection.bad_in_a_row + 1
    outputs: tuple[BusOutput, ...] = (Send(exc.reply()),)
    if count >= MAX_BAD_MESSAGES:
        return replace(connection, phase=ConnectionPhase.CLOSED, bad_in_a_row=count), (
            *outputs,
            Close(CLOSE_POLICY, "too many bad messages"),
        )
    return replace(connection, bad_in_a_row=count), outputs


def _login(
    connection: Connection, message: DeviceMessage, now_ms: int
) -> tuple[Connection, tuple[BusOutput, ...]]:
    if not isinstance(message, LoginMessage):
        return _refuse(connection, "not_logged_in", f"log in before sending {message.type}")
    if now_ms >= connection.expires_ms:
        return _refuse(connection, "challenge_expired", "the challenge has expired")
    if bytes.fromhex(message.challenge[2:]) != connection.challenge:
        return _refuse(
            connection, "wrong_challenge", "the login answers another connection's challenge"
        )
    try:
        claimed = Address(message.address)
        signature = Signature(message.signature)
        signer = recover_signer(
            login_digest(connection.server, connection.challenge, claimed), signature
        )
    except CryptoError as exc:
        return _refuse(connection, "bad_signature", str(exc))
    if signer != claimed:
        return _refuse(connection, "bad_signature", "the signature is not by the claimed address")
    if connection.allowed is not None and claimed not in connection.allowed:
        return _refuse(connection, "not_allowed", "this device may not use this bus")
    ready = replace(connection, phase=ConnectionPhase.READY, device=claimed)
    return ready, (LoggedIn(claimed),)


def _ready(
    connection: Connection, message: DeviceMessage
) -> tuple[Connection, tuple[BusOutput, ...]]:
    device = connection.device
    assert device is not None  # READY implies a logged-in device
    output: BusOutput
    if isinstance(message, LoginMessage):
        return _bad(connection, BadMessage("already_logged_in", "this connection is logged in"))
    if isinstance(message, DeviceRegisterMessage):
        output = Registered(device, message)
    elif isinstance(message, CommandAckMessage):
        output = CommandAcknowledged(
            device, bytes.fromhex(message.id[2:]), message.ok, message.error
        )
    elif isinstance(message, DeviceStatusMessage):
        output = StatusReported(device, message)
    else:
        output = TelemetryReceived(device, message)
    calm = connection if connection.bad_in_a_row == 0 else replace(connection, bad_in_a_row=0)
    return calm, (output,)
