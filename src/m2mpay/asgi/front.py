"""What stands in front of a FastAPI app: a raw-ASGI fast path for hot routes, and a
guard in front of both that bounds what a request may cost before anything reads it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final

import orjson

from m2mpay.asgi.errors import ErrorOf, Send, send_json
from m2mpay.asgi.server import BODY_TIMEOUT_S
from m2mpay.errors import ApiRefusal

__all__ = ["Asgi", "FastHandler", "FastPath", "Receive", "RequestGuard", "Scope"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]
# (the path's match, the request headers by lower-case name, the body) → (status, JSON body)
FastHandler = Callable[[re.Match[str], dict[bytes, bytes], bytes], Awaitable[tuple[int, Any]]]


class FastPath:
    """Answers a few hot routes in raw ASGI in front of `app`, which answers the rest.

    FastAPI's routing, dependency solving and middleware cost more than the work of a
    payment or a proof update; a hot route is answered here by the same code the app's
    route calls (which keeps documenting it in /openapi.json). `on_error` turns an
    exception from a handler into a status and a JSON body.
    """

    def __init__(
        self,
        app: Asgi,
        routes: Sequence[tuple[str, re.Pattern[str], FastHandler]],
        *,
        on_error: ErrorOf,
    ) -> None:
        self.app = app
        self._routes = routes
        self._on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for method, pattern, handler in self._routes:
                if scope["method"] == method:
                    match = pattern.fullmatch(scope["path"])
                    if match is not None:
                        await self._answer(handler, match, scope, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _answer(
        self, handler: FastHandler, match: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = dict(scope["headers"])
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")  # bounded by the `RequestGuard` in front
            if not message.get("more_body", False):
                break
        try:
            status, payload = await handler(match, headers, body)
        except Exception as exc:  # every failure gets the API's error shape
            status, payload = self._on_error(exc)
        await send_json(send, status, payload)


_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_JSON_TYPES: Final = (b"application/json", b"application/problem+json")


class RequestGuard:
    """Bounds what an HTTP request may cost before the app behind it reads a byte of its
    body: a body is only read for a caller whose credentials `authorize` accepts (every
    route that takes one changes state), only up to `max_body` bytes, only as JSON, and
    only if it parses within the depth a bounded parser allows.

    Without it, FastAPI reads and parses a body before the route's dependencies check
    the token, with the standard library's C parser, whose depth is bounded only by the
    interpreter's recursion limit, not by the C stack: one unauthenticated request
    could end the process. `on_error` turns a refusal into a status and a JSON body.
    """

    def __init__(
        self,
        app: Asgi,
        *,
        authorize: Callable[[bytes | None], None],
        on_error: ErrorOf,
        max_body: int = 64 * 1024,
    ) -> None:
        self.app = app
        self._authorize = authorize
        self._on_error = on_error
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        # Some clients send "Content-Length: 0" with a GET: that is no body.
        has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        if scope["method"] in _SAFE_METHODS and not has_body:
            await self.app(scope, receive, send)
            return
        try:
            self._authorize(headers.get(b"authorization"))
            try:
                async with asyncio.timeout(BODY_TIMEOUT_S):
                    body = await self._read(headers, receive)
            except TimeoutError:
                message = f"the body did not arrive within {BODY_TIMEOUT_S:g} s"
                raise ApiRefusal(408, "request_timeout", message) from None
        except Exception as exc:
            await send_json(send, *self._on_error(exc))
            return
        delivered = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal delivered
            if delivered:
                return await receive()  # only a disconnect is left to come
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit():
            raise ApiRefusal(400, "bad_request", "Content-Length is not a number")
        if int(declared) > self._max_body:
            raise ApiRefusal(413, "body_too_large", f"a body is at most {self._max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiRefusal(400, "disconnected", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise ApiRefusal(413, "body_too_large", f"a body is at most {self._max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            kind = headers.get(b"content-type", b"application/json").split(b";")[0].strip()
            if kind.lower() not in _JSON_TYPES:
                raise ApiRefusal(
                    415, "unsupported_media_type", "bodies are JSON (application/json)"
                )
            try:
                orjson.loads(body)  # bounded at depth 1024, which any parser after it honours
            except orjson.JSONDecodeError as exc:
                raise ApiRefusal(422, "invalid_input", f"body: not JSON: {exc}", "body") from None
        return body
