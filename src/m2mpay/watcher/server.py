"""Serving a watcher over HTTP with uvicorn (httptools), inside the caller's event loop.

uvicorn normally owns the process: it installs its own SIGINT/SIGTERM handlers and
re-raises the signal after shutting down. Here the watcher, the ledger and the store
must be stopped in order after the HTTP server, so signals stay with the caller
(`m2mpay watcher serve` turns them into `stop()`), and the server just serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Final

import uvicorn

from m2mpay.errors import TransportError
from m2mpay.watcher.api import create_asgi
from m2mpay.watcher.service import Watcher

__all__ = ["WatcherServer"]

log = logging.getLogger("m2mpay.watcher")

_KEEP_ALIVE_S: Final = 75  # longer than clients' idle pools, so they close first


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WatcherServer:
    """The HTTP API of a started `Watcher` on `host:port` (port 0: any free port)."""

    def __init__(self, watcher: Watcher, *, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            create_asgi(watcher),
            host=host,
            port=port,
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
            proxy_headers=False,  # served to clients directly, not behind a proxy
            timeout_keep_alive=_KEEP_ALIVE_S,
            backlog=4096,
        )
        self._server = _Server(config)
        self._where = f"{host}:{port}"
        self._task: asyncio.Task[None] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise TransportError("the watcher's HTTP server is not running")
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
                        f"the watcher's HTTP server could not start on {self._where}"
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
            raise TransportError(f"the watcher's HTTP server failed: {exc}") from None
        finally:
            self._task = None
            self._url = None
