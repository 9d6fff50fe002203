"""The device bus protocol: JSON text messages over one WebSocket, each with a `type`.

A device connects to `/v1/devices/ws` and the bus speaks first:

    bus    → challenge       {protocol, server, challenge, expires_ms}
    device → login           {address, challenge, signature}
    bus    → welcome         {device, telemetry_seq, pending, services}
                              then every command not yet acknowledged, oldest first
    device → device_register {name, services: [{name, unit, price, asset, kind}]}
    bus    → registered      {services}
    bus    → command         {id, session, service, action, until_units, units[, seconds]}
    device → command_ack     {id, ok[, error]}
    device → device_status   {state, sessions: [{session, service, delivered, active}], detail}
    device → telemetry       {seq, at_ms, data}
    bus    → telemetry_ack   {seq, duplicate}
    bus    → error           {code, message[, ref]}

The login signature is over `login_digest(server, challenge, device)`: a domain
prefix that no EIP-712 statement or peer handshake shares, the bus's own address
(a device that pins it cannot be relayed to another bus), the single-use random
challenge of this connection, and the device's address.

Commands are idempotent: `until_units` is the absolute number of units the device
may have delivered in the session (a lamp: seconds lit), so a command delivered
twice, or an older one after a newer, never lights the lamp longer. `action` is
`on` (deliver up to `until_units`), `off` (stop now; the session may go on later)
or `end` (the session is over: stop and forget it). A device reports its meter,
units delivered per session, in `device_status`. Prices are integer strings in the
asset's smallest unit; units, sequence numbers and times are JSON integers.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Final, Generic, Literal, TypeVar, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from m2mpay.crypto import Address, keccak256
from m2mpay.errors import MalformedMessage
from m2mpay.provenance.records import canonical_json

__all__ = [
    "LOGIN_DOMAIN",
    "MAX_MESSAGE_BYTES",
    "MAX_TELEMETRY_BYTES",
    "PROTOCOL",
    "BadMessage",
    "BusMessage",
    "ChallengeMessage",
    "CommandAckMessage",
    "CommandMessage",
    "DeviceMessage",
    "DeviceRegisterMessage",
    "DeviceStatusMessage",
    "ErrorMessage",
    "LoginMessage",
    "RegisteredMessage",
    "ServiceSpec",
    "SessionMeter",
    "TelemetryAckMessage",
    "TelemetryMessage",
    "WelcomeMessage",
    "canonical_json",
    "login_digest",
    "parse_bus_message",
    "parse_device_message",
]

PROTOCOL: Final = "m2mpay-device/1"
LOGIN_DOMAIN: Final = b"m2mpay/v1/device-login"
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_TELEMETRY_BYTES: Final = 8 * 1024  # one record's data, as canonical JSON
MAX_DATA_DEPTH: Final = 32
"""Deepest nesting of a device's free-form JSON (telemetry data, status detail)."""

M = TypeVar("M")  # the messages of one direction, a union

_ADDRESS = r"^0[xX][0-9a-fA-F]{40}$"
_HEX32 = r"^0x[0-9a-fA-F]{64}$"
_HEX16 = r"^0x[0-9a-fA-F]{32}$"
_SIGNATURE = r"^0[xX][0-9a-fA-F]{130}$"
_POSITIVE_DECIMAL = r"^[1-9][0-9]{0,77}$"
_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
_UINT63: Final = (1 << 63) - 1

ServiceName = Annotated[str, Field(pattern=_NAME, description="lower-case, e.g. `light`")]


def login_digest(server: Address, challenge: bytes, device: Address) -> bytes:
    """What a device signs to log in; see the module docstring."""
    if len(challenge) != 32:
        raise ValueError("a login challenge is 32 bytes")
    return keccak256(LOGIN_DOMAIN + bytes(server) + challenge + bytes(device))


_INT_LOW: Final = -(1 << 63)
_INT_HIGH: Final = 1 << 64


def _check_plain_json(value: Any, what: str) -> None:
    """`ValueError` unless `value` writes back as the same JSON, within `MAX_DATA_DEPTH`.

    The parser takes `NaN` and `Infinity`, which are not JSON and which orjson writes
    as `null` (the stored record would not be what the device sent), and integers of
    any size, which orjson refuses to write (the record could not be stored or
    shown). Iterative, so a deep value cannot exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DATA_DEPTH:
            raise ValueError(f"{what} nests deeper than {MAX_DATA_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((inner, depth + 1) for inner in item.values())
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{what} holds {item}, which JSON cannot write")
        elif isinstance(item, int) and not _INT_LOW <= item < _INT_HIGH:
            raise ValueError(f"{what} holds an integer outside 64 bits")


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ------------------------------------------------------------------ device → bus


class LoginMessage(_Message):
    type: Literal["login"] = "login"
    address: str = Field(pattern=_ADDRESS)
    challenge: str = Field(pattern=_HEX32, description="The challenge this connection got.")
    signature: str = Field(pattern=_SIGNATURE, description="65 bytes r‖s‖v over login_digest.")


class ServiceSpec(_Message):
    name: ServiceName
    unit: str = Field(min_length=1, max_length=16, description="`s`, `Wh`, `message`…")
    price: str = Field(pattern=_POSITIVE_DECIMAL, description="Per unit, smallest unit.")
    asset: str = Field(pattern=_ADDRESS, description="The token the price is in.")
    kind: Literal["actuation", "energy", "data"] = "actuation"


class DeviceRegisterMessage(_Message):
    type: Literal["device_register"] = "device_register"
    name: str = Field(default="", max_length=64, description="For people: `hall lamp`.")
    services: list[ServiceSpec] = Field(min_length=1, max_length=32)

    @field_validator("services")
    @classmethod
    def _unique(cls, services: list[ServiceSpec]) -> list[ServiceSpec]:
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError("service names must be unique")
        return services


class CommandAckMessage(_Message):
    type: Literal["command_ack"] = "command_ack"
    id: str = Field(pattern=_HEX16)
    ok: bool = True
    error: str | None = Field(default=None, max_length=500, description="Why a device refused.")


class SessionMeter(_Message):
    session: str = Field(pattern=_HEX32)
    service: ServiceName
    delivered: int = Field(ge=0, le=_UINT63, description="Units delivered in the session.")
    active: bool = Field(description="Delivering right now (a lamp: lit).")


class DeviceStatusMessage(_Message):
    type: Literal["device_status"] = "device_status"
    state: str = Field(default="ok", min_length=1, max_length=32)
    sessions: list[SessionMeter] = Field(default_factory=list, max_length=256)
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=32)

    @field_validator("detail")
    @classmethod
    def _plain(cls, detail: dict[str, Any]) -> dict[str, Any]:
        _check_plain_json(detail, "detail")
        return detail

    @field_validator("sessions")
    @classmethod
    def _unique(cls, sessions: list[SessionMeter]) -> list[SessionMeter]:
        keys = [s.session.lower() for s in sessions]
        if len(set(keys)) != len(keys):
            raise ValueError("each session appears once")
        return sessions


class TelemetryMessage(_Message):
    type: Literal["telemetry"] = "telemetry"
    seq: int = Field(ge=1, le=_UINT63, description="The device's counter, growing by one.")
    at_ms: int = Field(ge=0, le=_UINT63, description="When measured, device clock, Unix ms.")
    data: dict[str, Any] = Field(description="Any JSON object, at most 8 KiB.")

    @field_validator("data")
    @classmethod
    def _small(cls, data: dict[str, Any]) -> dict[str, Any]:
        _check_plain_json(data, "data")
        if len(canonical_json(data)) > MAX_TELEMETRY_BYTES:
            raise ValueError(f"telemetry data is limited to {MAX_TELEMETRY_BYTES} bytes")
        return data


DeviceMessage = (
    LoginMessage
    | DeviceRegisterMessage
    | CommandAckMessage
    | DeviceStatusMessage
    | TelemetryMessage
)


# ------------------------------------------------------------------ bus → device


class ChallengeMessage(_Message):
    type: Literal["challenge"] = "challenge"
    protocol: str = PROTOCOL
    server: str = Field(pattern=_ADDRESS, description="The bus's address, in the digest.")
    challenge: str = Field(pattern=_HEX32)
    expires_ms: int = Field(description="Log in before this (Unix ms, the bus's clock).")


class WelcomeMessage(_Message):
    type: Literal["welcome"] = "welcome"
    device: str = Field(pattern=_ADDRESS)
    telemetry_seq: int = Field(ge=0, description="The last telemetry seq stored: go on after.")
    pending: int = Field(ge=0, description="Commands not yet acknowledged; they follow.")
    services: list[str] = Field(description="What the bus knows this device offers.")


class RegisteredMessage(_Message):
    type: Literal["registered"] = "registered"
    services: list[str]


class CommandMessage(_Message):
    type: Literal["command"] = "command"
    id: str = Field(pattern=_HEX16)
    session: str = Field(pattern=_HEX32)
    service: ServiceName
    action: Literal["on", "off", "end"]
    until_units: int = Field(ge=0, description="Deliver at most this many units in all.")
    units: int = Field(ge=0, description="What this command adds to the previous one.")
    seconds: int | None = Field(default=None, description="`units` as seconds, for a unit of `s`.")


class TelemetryAckMessage(_Message):
    type: Literal["telemetry_ack"] = "telemetry_ack"
    seq: int
    duplicate: bool = Field(default=False, description="Stored before; nothing changed.")


class ErrorMessage(_Message):
    type: Literal["error"] = "error"
    code: str
    message: str
    ref: str | None = Field(default=None, description="The type of the message at fault, if known.")


BusMessage = (
    ChallengeMessage
    | WelcomeMessage
    | RegisteredMessage
    | CommandMessage
    | TelemetryAckMessage
    | ErrorMessage
)


# ------------------------------------------------------------------ parsing


class BadMessage(MalformedMessage):
    """A device sent something the protocol refuses; `code` says what, `ref` which type."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref

    def reply(self) -> ErrorMessage:
        return ErrorMessage(code=self.code, message=self.message, ref=self.ref)


def _ref_of(raw: bytes, types: tuple[str, ...]) -> str | None:
    """The `type` a malformed message claims, to name it in the error (best effort)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) and kind in types else None


def _bounded_bytes(raw: bytes | str) -> bytes:
    if not isinstance(raw, bytes | str):
        raise BadMessage("invalid_message", f"a message is text, not {type(raw).__name__}")
    # Characters first, so a huge text costs nothing; then its UTF-8, which is what
    # the limit is about (one character may take four bytes).
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadMessage("too_large", f"a message is at most {MAX_MESSAGE_BYTES} bytes")
    if isinstance(raw, str):
        try:
            raw = raw.encode()
        except UnicodeEncodeError:
            raise BadMessage("invalid_json", "not JSON: a lone surrogate in the text") from None
        if len(raw) > MAX_MESSAGE_BYTES:
            raise BadMessage("too_large", f"a message is at most {MAX_MESSAGE_BYTES} bytes")
    return raw


def _refusal(exc: ValidationError, raw: bytes, types: tuple[str, ...]) -> BadMessage:
    first = exc.errors(include_url=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return BadMessage("invalid_json", f"not JSON: {first['msg']}")
    if kind in ("dict_type", "model_attributes_type"):
        return BadMessage("invalid_message", "a message is a JSON object")
    if kind == "union_tag_not_found":
        return BadMessage("invalid_message", "a message needs a `type`")
    if kind == "union_tag_invalid":
        return BadMessage(
            "unknown_type", f"unknown message type; expected one of {', '.join(types)}"
        )
    where = ".".join(str(part) for part in first["loc"][1:]) or "message"
    return BadMessage("invalid_message", f"{where}: {first['msg']}", _ref_of(raw, types))


class _Parser(Generic[M]):
    """Decodes the messages of one direction: `messages`, a union of message models told
    apart by their `type`."""

    def __init__(self, messages: Any) -> None:
        self._adapter: TypeAdapter[M] = TypeAdapter(
            Annotated[messages, Field(discriminator="type")]
        )
        self.types: tuple[str, ...] = tuple(
            model.model_fields["type"].default for model in get_args(messages)
        )

    def parse(self, raw: bytes | str) -> M:
        data = _bounded_bytes(raw)
        try:
            return self._adapter.validate_json(data)
        except ValidationError as exc:
            raise _refusal(exc, data, self.types) from None


_FROM_DEVICE: Final = _Parser[DeviceMessage](DeviceMessage)
_FROM_BUS: Final = _Parser[BusMessage](BusMessage)


def parse_device_message(raw: bytes | str) -> DeviceMessage:
    """Decode and validate one message from a device; raises `BadMessage`."""
    return _FROM_DEVICE.parse(raw)


def parse_bus_message(raw: bytes | str) -> BusMessage:
    """Decode and validate one message from the bus, on the device's side; raises
    `BadMessage`. A device must not trust the bus's JSON any more than the reverse."""
    return _FROM_BUS.parse(raw)
