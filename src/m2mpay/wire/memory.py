"""In-process transport for unit tests: named endpoints (`mem://NAME`) in one registry.

It keeps the promises of the real transports (see `m2mpay.wire.transport`) so
code tested over it behaves the same over WebSocket or MQTT: frames are copied
to immutable bytes, order is kept, a close is delivered after the frames sent
before it, and reaching an unknown name fails like an unreachable host.
Queues are unbounded: there is no network to push back.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import Final

from m2mpay.errors import ConnectionClosed, TransportError
from m2mpay.wire.transport import FrameData, Link, Transport, check_frame

__all__ = ["MemoryLink", "MemoryTransport"]

SCHEME: Final = "mem://"

_registry: dict[str, MemoryTransport] = {}

# Marks, in a link's inbox, that the other side closed the link.
_CLOSE: Final = object()


class MemoryLink(Link):
    """One end of an in-memory link; its peer end is another `MemoryLink`."""

    __slots__ = ("_closed", "_inbox", "_owner", "_peer", "_remote")

    def __init__(self, remote: str, owner: MemoryTransport) -> None:
        self._remote = remote
        self._owner = owner
        self._inbox: asyncio.Queue[bytes | object] = asyncio.Queue()
        self._peer: MemoryLink | None = None
        self._closed = False

    @property
    def remote(self) -> str:
        return self._remote

    @property
    def closed(self) -> bool:
        return self._closed

    def _deliver(self, frame: bytes) -> None:
        if not self._closed:
            self._inbox.put_nowait(frame)

    async def send(self, frame: FrameData) -> None:
        data = check_frame(frame)
        self._peer_or_raise()._deliver(data)

    async def send_many(self, frames: Sequence[FrameData]) -> None:
        batch = [check_frame(frame) for frame in frames]
        peer = self._peer_or_raise()
        for data in batch:
            peer._deliver(data)

    def _peer_or_raise(self) -> MemoryLink:
        # A link whose other end closed refuses to send, as a socket would.
        peer = self._peer
        if self._closed or peer is None or peer._closed:
            raise ConnectionClosed(f"link to {self._remote} is closed")
        return peer

    async def recv(self) -> bytes:
        if self._closed:
            raise ConnectionClosed(f"link to {self._remote} is closed")
        item = await self._inbox.get()
        if isinstance(item, bytes):
            return item
        self._closed = True
        raise ConnectionClosed(f"link to {self._remote} was closed")

    def _shut(self) -> None:
        """Close this end without telling the peer (it is closing too)."""
        if not self._closed:
            self._closed = True
            self._inbox.put_nowait(_CLOSE)  # wakes a pending recv
        self._owner._forget(self)

    async def close(self) -> None:
        if self._closed:
            return
        self._shut()
        peer = self._peer
        if peer is not None and not peer._closed:
            # Queued after the frames already delivered, so the peer reads those first.
            peer._inbox.put_nowait(_CLOSE)
            peer._owner._forget(peer)


class MemoryTransport(Transport):
    """A named endpoint in this process; `name=None` picks a fresh random name."""

    def __init__(self, name: str | None = None) -> None:
        self._name = name or f"peer-{secrets.token_hex(6)}"
        self._incoming: asyncio.Queue[MemoryLink | None] = asyncio.Queue()
        self._links: set[MemoryLink] = set()
        self._running = False
        self._stopped = False

    @property
    def endpoint(self) -> str:
        return SCHEME + self._name

    async def start(self) -> None:
        if self._running:
            return
        if self._stopped:
            raise TransportError(f"{self.endpoint} was stopped; make a new transport")
        if self._name in _registry:
            raise TransportError(f"{self.endpoint} is already in use in this process")
        _registry[self._name] = self
        self._running = True

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._running = False
        if _registry.get(self._name) is self:
            del _registry[self._name]
        for link in list(self._links):
            await link.close()
        self._incoming.put_nowait(None)  # wakes a pending accept

    def _forget(self, link: MemoryLink) -> None:
        self._links.discard(link)

    async def connect(self, endpoint: str) -> Link:
        if not self._running:
            raise TransportError("start the transport before connecting")
        if not endpoint.startswith(SCHEME):
            raise TransportError(f"not an in-memory endpoint: {endpoint!r}")
        server = _registry.get(endpoint[len(SCHEME) :])
        if server is None:
            raise TransportError(f"nothing listens at {endpoint}")
        mine = MemoryLink(endpoint, self)
        theirs = MemoryLink(self.endpoint, server)
        mine._peer, theirs._peer = theirs, mine
        self._links.add(mine)
        server._links.add(theirs)
        server._incoming.put_nowait(theirs)
        return mine

    async def accept(self) -> Link:
        if self._stopped:
            raise TransportError(f"{self.endpoint} is stopped")
        link = await self._incoming.get()
        if link is None:
            self._incoming.put_nowait(None)  # for any other waiter
            raise TransportError(f"{self.endpoint} is stopped")
        return link

    def __repr__(self) -> str:
        return f"MemoryTransport({self.endpoint!r})"
