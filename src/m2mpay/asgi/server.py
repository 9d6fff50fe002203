"""Serving an ASGI app with uvicorn (httptools) inside the caller's event loop.

uvicorn normally owns the process: it installs its own SIGINT/SIGTERM handlers and
re-raises the signal after shutting down. Our services must stop their parts in
order after the HTTP server (node, store, ledger), so signals stay with the caller
and the server just serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from m2mpay.errors import TransportError

__all__ = ["BODY_TIMEOUT_S", "HEAD_TIMEOUT_S", "AsgiServer"]

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
        # asyncio turns Nagle's algorithm off only on sockets made with proto
        # IPPROTO_TCP; uvicorn's bound socket (proto 0) and so every accepted one keep
        # it on, and a body written after its head then waits for the client's delayed
        # ACK: ~40 ms on every answer that FastAPI sends in two parts.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
        # We bind, not uvicorn: on a failed bind uvicorn raises SystemExit, which
        # asyncio lets escape the event loop as a traceback before anyone can catch it.
        config = self._server.config
        try:
            listening = config.bind_socket()
        except SystemExit:
            raise TransportError(
                f"the {self._name}'s HTTP server could not listen on {self._where}: "
                "the port is in use or the address is not this machine's"
            ) from None
        self._task = asyncio.ensure_future(self._server.serve(sockets=[listening]))
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
