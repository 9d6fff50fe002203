"""What the client side of a watcher raises beyond the service's own refusals.

A refusal comes back as the class the service raised (`refusal_for`, from the status
of the error body), so code talking to a watcher over HTTP catches exactly what code
calling it in process catches; a watcher that cannot be reached, or fails on its
side, is a `TransportError` of its own.
"""

from __future__ import annotations

from typing import Final

from m2mpay.errors import TransportError
from m2mpay.watcher.errors import (
    BodyTooLarge,
    InvalidInput,
    NotFound,
    StaleSubmission,
    Unauthorized,
    WatcherRefusal,
)

__all__ = ["WatcherUnavailable", "refusal_for"]


class WatcherUnavailable(TransportError):
    """The watcher cannot be reached, or failed on its side (HTTP 5xx)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


_BY_STATUS: Final[dict[int, type[WatcherRefusal]]] = {
    cls.status: cls for cls in (Unauthorized, NotFound, StaleSubmission, InvalidInput, BodyTooLarge)
}


def refusal_for(status: int, code: str, message: str, field: str | None) -> WatcherRefusal:
    """The refusal a watcher answered with `status`, as the service raised it."""
    return _BY_STATUS.get(status, WatcherRefusal)(code, message, field)
