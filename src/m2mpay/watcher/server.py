"""Serving a watcher over HTTP: the project's one ASGI server (`m2mpay.asgi.AsgiServer`),
inside the caller's event loop, with its bounds on slow and flooding clients.

Signals stay with the caller (`m2mpay watcher serve` turns them into `stop()`): the
watcher, the ledger and the store are stopped in order after the HTTP server.
"""

from __future__ import annotations

from m2mpay.asgi import AsgiServer
from m2mpay.watcher.api import create_asgi
from m2mpay.watcher.service import Watcher

__all__ = ["WatcherServer"]


class WatcherServer(AsgiServer):
    """The HTTP API of a started `Watcher` on `host:port` (port 0: any free port)."""

    def __init__(self, watcher: Watcher, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(create_asgi(watcher), host=host, port=port, name="watcher")
