"""The one error shape of the project's HTTP services: `{"error": {"code", "message"[, "field"]}}`.

The node's API and the watcher answer every failure in it, whether FastAPI answers the
request or a raw-ASGI fast path does. What differs between them is only which of their
exceptions means which status and code: each service writes that once, as an `ErrorOf`,
and this module turns it into answers (`install_error_handlers` for FastAPI,
`send_json` for raw ASGI). A refusal a service raises on purpose carries its own
status, code, message and field (`Refusal`; `refusal_answer` writes it). `ErrorBody`
describes the shape in a service's /openapi.json (`error_responses`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

__all__ = [
    "ErrorBody",
    "ErrorDetail",
    "ErrorOf",
    "Refusal",
    "Send",
    "error_body",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "refusal_answer",
    "send_json",
]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ErrorOf = Callable[[BaseException], tuple[int, dict[str, Any]]]
"""How a service answers an exception: the status and the body in the error shape."""

_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
# What routing itself refuses with (no such path, a method the path does not take).
_ROUTING_CODES: Final = {404: "not_found", 405: "method_not_allowed"}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable machine-readable reason, e.g. `not_found`.")
    message: str
    field: str | None = Field(None, description="The offending input field, when one is at fault.")


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class Refusal(Protocol):
    """A refusal a service raises on purpose, answered as it says."""

    @property
    def status(self) -> int: ...
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def field(self) -> str | None: ...


def error_responses(
    described: Mapping[int, str], model: type[BaseModel] = ErrorBody
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses` for /openapi.json: each status, in the error shape (`model`,
    a service's own description of it), with what it means at that service."""
    return {status: {"model": model, "description": text} for status, text in described.items()}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    return {"error": detail}


def refusal_answer(refusal: Refusal) -> tuple[int, dict[str, Any]]:
    return refusal.status, error_body(refusal.code, refusal.message, refusal.field)


def _challenge(status: int) -> dict[str, str] | None:
    # A 401 says how to authenticate (RFC 9110): with a bearer token.
    return {"WWW-Authenticate": "Bearer"} if status == 401 else None


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body = error_body(code, message, field)
    return JSONResponse(body, status_code=status, headers=_challenge(status))


async def send_json(send: Send, status: int, payload: Any) -> None:
    """Answer a raw-ASGI request with `payload` as JSON."""
    content = orjson.dumps(payload)
    headers = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (_challenge(status) or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def install_error_handlers(
    app: FastAPI, error_of: ErrorOf, kinds: Iterable[type[Exception]]
) -> None:
    """Answer routing's refusals, and every exception of `kinds`, in the error shape.

    Each kind the service raises gets its own handler: Starlette hands a bare
    `Exception` handler to its outermost middleware, which answers and then raises
    again, so only that last resort should reach it.
    """

    async def answer(_: Request, exc: Exception) -> JSONResponse:
        status, body = error_of(exc)
        return JSONResponse(body, status_code=status, headers=_challenge(status))

    async def routing_refused(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = _ROUTING_CODES.get(exc.status_code, "http_error")
        answer = error_response(exc.status_code, code, str(exc.detail))
        answer.headers.update(exc.headers or {})  # 405 names the methods allowed (`Allow`)
        return answer

    app.add_exception_handler(HTTPException, routing_refused)
    for kind in kinds:
        app.add_exception_handler(kind, answer)
