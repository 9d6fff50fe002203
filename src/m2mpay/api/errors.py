"""How the node's API answers failures, in the project's one error shape
(`m2mpay.asgi.errors`: `{"error": {"code", "message"[, "field"]}}`).

Library errors map to statuses by what they mean for the caller: a refused request
is 409 (the state does not allow it, a peer cannot be reached now) or 422 (the input
is wrong), an unknown thing 404, a chain that fails or cannot be reached 502/503.
Validation errors are 422 and name the field; nothing is answered with a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from m2mpay.asgi.errors import error_body, refusal_answer
from m2mpay.asgi.errors import install_error_handlers as _install
from m2mpay.errors import (
    AccessError,
    ApiRefusal,
    ChannelError,
    CryptoError,
    DeviceError,
    InsufficientFunds,
    LedgerError,
    LedgerUnavailable,
    M2MPayError,
    MarketError,
    ProtocolError,
    StreamError,
    TransactionReverted,
    TransportError,
)

__all__ = ["ApiError", "error_body", "error_of", "install_error_handlers", "provided"]

_Part = TypeVar("_Part")

log = logging.getLogger("m2mpay.api")

_NOT_FOUND: Final = frozenset(
    {
        "unknown_channel",
        "unknown_session",
        "unknown_offer",
        "unknown_device",
        "unknown_service",
        "unknown_record",
        "unknown_listing",
        "not_found",
    }
)
_BAD_INPUT: Final = frozenset(
    {
        "invalid_amount",
        "invalid_offer",
        "price_above_limit",
        "invalid_input",
        "no_route",
        # paid access (`AccessError`)
        "bad_device_id",
        "bad_feed",
        "bad_username",
        "bad_password",
        "bad_topic",
        "below_min_seconds",
        "above_max_seconds",
        "below_one_second",
        "not_whole_seconds",
        # the market (`MarketError`)
        "bad_geohash",
        "bad_kind",
        "bad_query",
        "bad_rating",
    }
)
# A local request refused with one of these codes is not a conflict (409).
_BY_CODE: Final[dict[str, int]] = {
    **dict.fromkeys(_NOT_FOUND, 404),
    **dict.fromkeys(_BAD_INPUT, 422),
    **dict.fromkeys(("not_running", "node_failed", "failed", "broker_unreachable"), 503),
    "timeout": 504,
    "broker_timeout": 504,
}
# What the library's other families mean for the caller, the most specific first.
_BY_FAMILY: Final[tuple[tuple[type[M2MPayError], int, str], ...]] = (
    (TransactionReverted, 409, "transaction_reverted"),
    (InsufficientFunds, 409, "insufficient_funds"),
    (LedgerUnavailable, 503, "ledger_unavailable"),
    (LedgerError, 502, "ledger_error"),
    # The peer the caller named cannot be reached now: its state, not our failure.
    (TransportError, 409, "peer_unreachable"),
    (CryptoError, 422, "invalid_input"),
)


class ApiError(M2MPayError):
    """Raised by handlers: a status, a stable code, a message and maybe the field at fault
    (the server side of the refusal the SDK raises as an `ApiRefusal`)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def provided(part: _Part | None, code: str, lacking: str) -> _Part:
    """A part of the node a route needs: a node made without it (a deployment without
    the contract, a node run without the bus, the broker or the streams) answers 409
    `code`, the same whichever route asked."""
    if part is None:
        raise ApiError(409, code, lacking)
    return part


def error_of(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and body an exception from a handler is answered with."""
    if isinstance(exc, ApiError | ApiRefusal):
        return refusal_answer(exc)
    if isinstance(exc, ValidationError | RequestValidationError):
        return 422, _invalid_body(exc.errors())
    if isinstance(exc, TimeoutError):
        return 504, error_body("timeout", str(exc) or "the operation did not finish in time")
    if isinstance(exc, M2MPayError):
        status, code = _status_of(exc)
        if status >= 500:
            log.warning("request failed: %s", exc)
        message = getattr(exc, "message", None) or str(exc)
        return status, error_body(code, str(message)[:1000])
    log.error("unexpected error: %r", exc, exc_info=exc)
    return 500, error_body("internal", "internal error; the node logged it")


def _status_of(exc: M2MPayError) -> tuple[int, str]:
    code = getattr(exc, "code", None)
    coded = ChannelError | StreamError | DeviceError | AccessError | MarketError
    if isinstance(exc, coded) and code is not None:
        return _BY_CODE.get(code, 409), code
    for family, status, name in _BY_FAMILY:
        if isinstance(exc, family):
            return status, name
    if isinstance(exc, ProtocolError):
        # A peer refused or failed its side of the protocol: the peer's state, not ours.
        return 409, code if isinstance(code, str) else "peer_refused"
    return 500, "internal"


def _invalid_body(errors: Sequence[Any]) -> dict[str, Any]:
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        field = "body"  # its location is a character position, not a field
    else:
        field = _field_of(tuple(first.get("loc", ("body",))))
    return error_body("invalid_input", f"{field}: {first.get('msg')}", field)


def _field_of(location: tuple[Any, ...]) -> str:
    # ("body", "offer", "price") → "offer.price"; the leading part says where, not what.
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    kinds = (RequestValidationError, ApiError, M2MPayError, TimeoutError, Exception)
    _install(app, error_of, kinds)
