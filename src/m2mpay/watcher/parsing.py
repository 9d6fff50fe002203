"""Parsing client input into typed values; every refusal names the offending field.

Pure and shared by the HTTP API and the service's Python entry points, so a bad value
is refused the same way whichever door it came through, before anything changes.
"""

from __future__ import annotations

import re
from typing import Any, Final

from m2mpay.crypto import ZERO_ADDRESS, Address, Signature
from m2mpay.errors import CryptoError
from m2mpay.watcher.core import MAX_CHALLENGE_PERIOD, UINT256_MAX, ChannelParams
from m2mpay.watcher.errors import InvalidInput

__all__ = [
    "parse_address",
    "parse_channel_id",
    "parse_channel_params",
    "parse_int",
    "parse_object",
    "parse_signature",
    "parse_uint256",
]

_DECIMAL: Final = re.compile(r"(0|[1-9][0-9]{0,77})")
_CHANNEL_ID: Final = re.compile(r"0x[0-9a-fA-F]{64}")


def _invalid(field: str, message: str, code: str = "invalid_field") -> InvalidInput:
    return InvalidInput(code, message, field)


def parse_object(value: Any, field: str, allowed: frozenset[str]) -> dict[str, Any]:
    """A JSON object holding exactly the `allowed` keys."""
    if not isinstance(value, dict):
        raise _invalid(field, "must be a JSON object")
    missing = sorted(allowed - value.keys())
    if missing:
        name = f"{field}.{missing[0]}" if field != "body" else missing[0]
        raise _invalid(name, "is required", "missing_field")
    extra = sorted(value.keys() - allowed)
    if extra:
        name = f"{field}.{extra[0]}" if field != "body" else extra[0]
        raise _invalid(name, "is not a known field", "unknown_field")
    return value


def parse_uint256(value: Any, field: str) -> int:
    """A uint256 written as a decimal string (JSON numbers lose precision past 2**53)."""
    if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
        raise _invalid(field, 'must be a decimal string of an unsigned integer, e.g. "1000"')
    number = int(value)
    if number > UINT256_MAX:
        raise _invalid(field, "is larger than 2**256 - 1")
    return number


def parse_int(value: Any, field: str, low: int, high: int) -> int:
    """A JSON integer in [low, high] (booleans are not integers here)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(field, "must be an integer")
    if not low <= value <= high:
        raise _invalid(field, f"must be between {low} and {high}")
    return value


def parse_address(value: Any, field: str) -> Address:
    if not isinstance(value, str):
        raise _invalid(field, "must be a 0x-prefixed 20-byte hex address")
    if value[:2] not in ("0x", "0X"):
        raise _invalid(field, "must be a 0x-prefixed 20-byte hex address")
    try:
        return Address(value)
    except CryptoError as exc:
        raise _invalid(field, str(exc)) from None


def parse_signature(value: Any, field: str = "signature") -> Signature:
    if not isinstance(value, str) or value[:2] not in ("0x", "0X"):
        raise _invalid(field, "must be a 0x-prefixed 65-byte hex signature")
    try:
        return Signature(value)
    except CryptoError as exc:
        raise _invalid(field, str(exc), "bad_signature") from None


def parse_channel_id(value: str, field: str = "channel_id") -> bytes:
    if _CHANNEL_ID.fullmatch(value) is None:
        raise _invalid(field, "must be 0x followed by 64 hex digits")
    return bytes.fromhex(value[2:])


_CHANNEL_FIELDS: Final = frozenset({"a", "b", "token", "challenge_period", "nonce"})


def parse_channel_params(value: Any, field: str = "channel") -> ChannelParams:
    """Channel parameters as the hub would accept them; the nonce as a string or an integer."""
    raw = parse_object(value, field, _CHANNEL_FIELDS)
    a = parse_address(raw["a"], f"{field}.a")
    b = parse_address(raw["b"], f"{field}.b")
    token = parse_address(raw["token"], f"{field}.token")
    if a == ZERO_ADDRESS:
        raise _invalid(f"{field}.a", "cannot be the zero address")
    if b == ZERO_ADDRESS:
        raise _invalid(f"{field}.b", "cannot be the zero address")
    if a == b:
        raise _invalid(f"{field}.b", "must differ from a")
    period = parse_int(
        raw["challenge_period"], f"{field}.challenge_period", 1, MAX_CHALLENGE_PERIOD
    )
    nonce_raw = raw["nonce"]
    if isinstance(nonce_raw, int) and not isinstance(nonce_raw, bool):
        nonce = parse_int(nonce_raw, f"{field}.nonce", 0, UINT256_MAX)
    else:
        nonce = parse_uint256(nonce_raw, f"{field}.nonce")
    return ChannelParams(a, b, token, period, nonce)
