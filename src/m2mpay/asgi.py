"""Serving an ASGI app with uvicorn (httptools) inside the caller's event loop, a
raw-ASGI fast path for hot routes in front of a FastAPI app, and a guard in front of
both that bounds what a request may cost before anything reads it.

uvicorn normally owns the process: it installs its own SIGINT/SIGTERM handlers and
re-raises the signal after shutting down. Our services must stop their parts in
order after the HTTP server (node, store, ledger), so signals stay with the caller
and the server just serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from typing import Any, Final

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from m2mpay.errors import ApiRefusal, TransportError

__all__ = ["AsgiServer", "FastHandler", "FastPath", "RequestGuard"]

_KEEP_ALIVE_S: Final = 75  # longer than clients' idle pools, so they close first
# Every message a device or client sends on a WebSocket is small; uvicorn's default is 16 MiB.
_WS_MAX_BYTES: Final = 256 * 1024
HEAD_TIMEOUT_S: Final = 10.0  # from a connection (or a request's first byte) to its headers
BODY_TIMEOUT_S: Final = 10.0  # from the headers to the end of the body
# Beyond this many connections at once uvicorn answers 503 and closes: the sockets and
# memory a flood can take stay bounded while the head timeout clears slow ones.
_MAX_CONNECTIONS: Final = 4096


class _HeadTimedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's head.

    uvicorn closes idle keep-alive connections, but not a client that connects and
    sends nothing, or sends its headers a byte at a time (slowloris): each would hold a
    socket and a protocol object for good, and enough of them refuse everyone else.
    """

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._start_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head_timer()  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_too_late)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AsgiServer:
    """`app` on `host:port` (port 0: any free port); `name` says what in errors."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=_HeadTimedHttp,
            ws="websockets-sansio",
            lifespan="off",
            access_log=False,
            log_level="warning",
            proxy_headers=False,  # served to clients directly, not behind a proxy
            timeout_keep_alive=_KEEP_ALIVE_S,
            ws_max_size=_WS_MAX_BYTES,
            backlog=4096,
            limit_concurrency=_MAX_CONNECTIONS,
            # Event streams never end by themselves: give them a moment, then close.
            timeout_graceful_shutdown=3,
        )
        self._server = _Server(config)
        self._name = name
        self._where = f"{host}:{port}"
        self._task: asyncio.Task[None] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise TransportError(f"the {self._name}'s HTTP server is not running")
        return self._url

    async def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL once the socket is listening."""
        self._task = asyncio.ensure_future(self._server.serve())
        async with asyncio.timeout(timeout):
            while not self._server.started:
                if self._task.done():
                    with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
                        self._task.result()
                    self._task = None
                    raise TransportError(
                        f"the {self._name}'s HTTP server could not start on {self._where}"
                    )
                await asyncio.sleep(0.01)
        socket = self._server.servers[0].sockets[0]
        host, port = socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{port}"
        return self._url

    async def stop(self) -> None:
        """Stop accepting, finish requests in progress, close connections."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        except SystemExit as exc:  # uvicorn exits on a failed startup
            raise TransportError(f"the {self._name}'s HTTP server failed: {exc}") from None
        finally:
            self._task = None
            self._url = None


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]
# (the path's match, the request headers by lower-case name, the body) → (status, JSON body)
FastHandler = Callable[[re.Match[str], dict[bytes, bytes], bytes], Awaitable[tuple[int, Any]]]
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]


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
        on_error: Callable[[BaseException], tuple[int, Any]],
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
        await _answer(send, status, payload)


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
        on_error: Callable[[BaseException], tuple[int, Any]],
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
            await _answer(send, *self._on_error(exc))
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


async def _answer(send: Send, status: int, payload: Any) -> None:
    content = orjson.dumps(payload)
    response = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())]
    if status == 401:
        response.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": response})
    await send({"type": "http.response.body", "body": content})
