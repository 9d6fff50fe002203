"""Serving an ASGI app with uvicorn (httptools) inside the caller's event loop, and a
raw-ASGI fast path for hot routes in front of a FastAPI app.

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

from m2mpay.errors import TransportError

__all__ = ["AsgiServer", "FastHandler", "FastPath"]

_KEEP_ALIVE_S: Final = 75  # longer than clients' idle pools, so they close first


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
            http="httptools",
            ws="websockets-sansio",
            lifespan="off",
            access_log=False,
            log_level="warning",
            proxy_headers=False,  # served to clients directly, not behind a proxy
            timeout_keep_alive=_KEEP_ALIVE_S,
            backlog=4096,
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
        max_body: int = 16 * 1024,
    ) -> None:
        self.app = app
        self._routes = routes
        self._on_error = on_error
        self._max_body = max_body

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
            body += message.get("body", b"")
            if len(body) > self._max_body or not message.get("more_body", False):
                break
        try:
            status, payload = await handler(match, headers, body)
        except Exception as exc:  # every failure gets the API's error shape
            status, payload = self._on_error(exc)
        content = orjson.dumps(payload)
        response = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())]
        if status == 401:
            response.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": response})
        await send({"type": "http.response.body", "body": content})
