"""WebSocket transport (`websockets`, asyncio API): one binary message per frame.

Choices that matter on the payment hot path:

- compression is off: permessage-deflate costs CPU on every frame and saves
  little on signatures and hashes, which do not compress;
- `max_size` is `MAX_FRAME_SIZE`, so a peer cannot make us buffer more than
  one maximal frame per message;
- asyncio enables TCP_NODELAY on every TCP socket, so no Nagle delay is added;
- `send_many` frames every message first and hands the bytes to the socket in
  one write (one system call) instead of one per frame;
- proxies from the environment are ignored unless `proxy=` says otherwise:
  machines talk to each other directly.

Text messages are a protocol violation here (a link carries bytes only): the
link is closed with code 1003 and `recv` raises `ConnectionClosed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidHandshake, InvalidState, InvalidURI
from websockets.protocol import State

from m2mpay.errors import ConnectionClosed, TransportError
from m2mpay.wire.transport import MAX_FRAME_SIZE, FrameData, Link, Transport, check_frame

__all__ = ["WebSocketLink", "WebSocketTransport"]

# Incoming messages buffered per connection before reading from the socket pauses:
# enough to keep a busy link streaming, bounded to 64 maximal frames of memory.
_MAX_QUEUE: Final = 64
_CLOSE_TIMEOUT: Final = 2.0


def _options() -> dict[str, Any]:
    return {
        "compression": None,
        "max_size": MAX_FRAME_SIZE,
        "max_queue": _MAX_QUEUE,
        "close_timeout": _CLOSE_TIMEOUT,
    }


class WebSocketLink(Link):
    """A link over one WebSocket connection (either side of it)."""

    __slots__ = ("_closed", "_conn", "_done", "_remote")

    def __init__(self, conn: Connection, remote: str) -> None:
        self._conn = conn
        self._remote = remote
        self._closed = False
        # Set when this side is done with the connection; a server handler waits on it.
        self._done = asyncio.Event()

    @property
    def remote(self) -> str:
        return self._remote

    @property
    def closed(self) -> bool:
        return self._closed or self._conn.state is not State.OPEN

    def _lost(self, exc: BaseException | None = None) -> ConnectionClosed:
        self._closed = True
        self._done.set()
        reason = f" ({exc})" if exc is not None else ""
        return ConnectionClosed(f"link to {self._remote} is closed{reason}")

    async def send(self, frame: FrameData) -> None:
        data = check_frame(frame)
        if self._closed:
            raise self._lost()
        try:
            await self._conn.send(data)
        except WsConnectionClosed as exc:
            raise self._lost(exc) from None

    async def send_many(self, frames: Sequence[FrameData]) -> None:
        batch = [check_frame(frame) for frame in frames]
        if self._closed:
            raise self._lost()
        conn = self._conn
        if conn.state is not State.OPEN:
            raise self._lost()
        # Frame every message with the protocol object, then write all the bytes
        # at once: one system call for the batch instead of one per frame. This
        # is what `Connection.send` does per message, minus the per-message write.
        try:
            for data in batch:
                conn.protocol.send_binary(data)
            conn.transport.writelines(conn.protocol.data_to_send())
            await conn.drain()
        except (WsConnectionClosed, InvalidState, OSError) as exc:
            raise self._lost(exc) from None

    async def recv(self) -> bytes:
        if self._closed:
            raise self._lost()
        try:
            data = await self._conn.recv()
        except WsConnectionClosed as exc:
            raise self._lost(exc) from None
        if isinstance(data, str):
            await self._conn.close(1003, "m2mpay links carry binary frames only")
            raise self._lost(ValueError("peer sent a text message"))
        return data

    async def close(self) -> None:
        if self._closed and self._conn.state is State.CLOSED:
            return
        self._closed = True
        try:
            await self._conn.close()
        finally:
            self._done.set()

    async def _wait_done(self) -> None:
        await self._done.wait()


class WebSocketTransport(Transport):
    """A WebSocket server on `host:port` that also dials other endpoints.

    `port=0` picks a free port; `endpoint` then reports the real one. When
    listening on a wildcard address, pass `advertised_host` (the name peers
    should dial) or `endpoint` falls back to 127.0.0.1.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        advertised_host: str | None = None,
        connect_timeout: float = 10.0,
        proxy: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._advertised = advertised_host
        self._connect_timeout = connect_timeout
        self._proxy = proxy
        self._server: Server | None = None
        self._incoming: asyncio.Queue[WebSocketLink | None] = asyncio.Queue()
        self._links: set[WebSocketLink] = set()
        self._stopped = False

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise TransportError("the WebSocket transport is not started")
        host = self._advertised or self._host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self._port}"

    async def start(self) -> None:
        if self._server is not None:
            return
        if self._stopped:
            raise TransportError("this WebSocket transport was stopped; make a new one")
        try:
            self._server = await serve(self._handle, self._host, self._port, **_options())
        except OSError as exc:
            raise TransportError(f"cannot listen on {self._host}:{self._port}: {exc}") from None
        if self._port == 0:
            self._port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, conn: ServerConnection) -> None:
        if self._stopped:
            return
        host, port = conn.remote_address[:2]
        link = WebSocketLink(conn, f"ws://{host}:{port} (incoming)")
        self._links.add(link)
        self._incoming.put_nowait(link)
        try:
            # The connection lives as long as this handler: wait until the link
            # is closed by either side.
            closed = asyncio.ensure_future(conn.wait_closed())
            done = asyncio.ensure_future(link._wait_done())
            await asyncio.wait((closed, done), return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            done.cancel()
        finally:
            self._links.discard(link)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._incoming.put_nowait(None)
        links = list(self._links)
        self._links.clear()
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def connect(self, endpoint: str) -> Link:
        if self._stopped:
            raise TransportError("this WebSocket transport is stopped")
        if not endpoint.startswith(("ws://", "wss://")):
            raise TransportError(f"not a WebSocket endpoint: {endpoint!r}")
        try:
            conn: ClientConnection = await ws_connect(
                endpoint, open_timeout=self._connect_timeout, proxy=self._proxy, **_options()
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ValueError) as exc:
            # ValueError: a host name that IDNA cannot encode, a port out of range.
            raise TransportError(f"cannot reach {endpoint}: {exc or type(exc).__name__}") from None
        link = WebSocketLink(conn, endpoint)
        self._links.add(link)
        # Forget the link once its connection is gone, however it ended.
        watcher = asyncio.ensure_future(conn.wait_closed())
        watcher.add_done_callback(lambda _: self._links.discard(link))
        return link

    async def accept(self) -> Link:
        if self._stopped:
            raise TransportError("this WebSocket transport is stopped")
        link = await self._incoming.get()
        if link is None:
            self._incoming.put_nowait(None)
            raise TransportError("this WebSocket transport is stopped")
        return link

    def __repr__(self) -> str:
        where = self.endpoint if self._server is not None else f"{self._host}:{self._port}"
        return f"WebSocketTransport({where!r})"
