"""The project's one HTTP server and what every HTTP service puts in front of its app.

- `server`: `AsgiServer`, uvicorn inside the caller's event loop, with bounds on slow
  and flooding clients.
- `front`: `FastPath` (hot routes in raw ASGI) and `RequestGuard` (token before body,
  size, depth and time bounds).
- `errors`: the one error shape, `{"error": {"code", "message"[, "field"]}}`, and how a
  service's exceptions are answered in it.
"""

from m2mpay.asgi.errors import (
    ErrorBody,
    ErrorDetail,
    ErrorOf,
    Refusal,
    error_body,
    error_response,
    install_error_handlers,
    refusal_answer,
    send_json,
)
from m2mpay.asgi.front import FastHandler, FastPath, RequestGuard
from m2mpay.asgi.server import BODY_TIMEOUT_S, HEAD_TIMEOUT_S, AsgiServer

__all__ = [
    "BODY_TIMEOUT_S",
    "HEAD_TIMEOUT_S",
    "AsgiServer",
    "ErrorBody",
    "ErrorDetail",
    "ErrorOf",
    "FastHandler",
    "FastPath",
    "Refusal",
    "RequestGuard",
    "error_body",
    "error_response",
    "install_error_handlers",
    "refusal_answer",
    "send_json",
]
