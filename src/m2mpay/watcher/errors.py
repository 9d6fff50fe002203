"""The watcher's refusals, shared by the service, its HTTP API and its client.

Each refusal carries a stable `code`, a message for people, the HTTP `status` it
is answered with and, for bad input, the offending `field`. The client raises the
same class the service raised, rebuilt from the error body, so code that talks to a
watcher over HTTP catches exactly what code calling it in process would catch.

They derive from the existing families of `m2mpay.errors`: a refusal is bad input
from a client (`ProtocolError`); a wrong or missing token is also an
`AuthenticationFailed`. A watcher that cannot be reached is the client side's error
(`m2mpay.watcher_client.errors.WatcherUnavailable`, a `TransportError`).
"""

from __future__ import annotations

from typing import ClassVar

from m2mpay.errors import AuthenticationFailed, ProtocolError

__all__ = [
    "BodyTooLarge",
    "InvalidInput",
    "NotFound",
    "StaleSubmission",
    "Unauthorized",
    "WatcherRefusal",
]


class WatcherRefusal(ProtocolError):
    """The watcher refused a request; nothing was changed."""

    status: ClassVar[int] = 400

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (field {field})" if field else ""))
        self.code = code
        self.message = message
        self.field = field


class Unauthorized(WatcherRefusal, AuthenticationFailed):
    """No bearer token, or not the token of this registration (HTTP 401)."""

    status = 401


class NotFound(WatcherRefusal):
    """No such registration or channel at this watcher (HTTP 404)."""

    status = 404


class StaleSubmission(WatcherRefusal):
    """A proof not newer than the one held, or a registration not newer (HTTP 409)."""

    status = 409


class InvalidInput(WatcherRefusal):
    """Malformed input or a signature by the wrong key; `field` names it (HTTP 422)."""

    status = 422


class BodyTooLarge(InvalidInput):
    """A request body above the API's limit, refused before it is read whole (HTTP 413)."""

    status = 413
