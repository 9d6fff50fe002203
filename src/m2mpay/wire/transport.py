"""Transport interface: raw frame pipes between two peers.

A `Link` moves whole frames (bytes) in order, reliably, both ways, between this
process and one remote endpoint. It knows nothing of identities: a link is only
as trustworthy as the network under it, which is why everything above it runs
through an authenticated `m2mpay.wire.peer_link.PeerLink`.

A `Transport` listens at its `endpoint` (a URL others `connect` to) and hands
out incoming links through `accept()`.

Shared semantics, checked by one conformance suite against every
implementation (`tests/wire/test_transport_conformance.py`):

- frames arrive whole, in the order they were sent, as `bytes` copies;
- a frame is at most `MAX_FRAME_SIZE` bytes; sending a larger one raises
  `TransportError` and leaves the link usable;
- `recv()` raises `ConnectionClosed` once the other side closed the link (after
  every frame it sent before closing was delivered), when this side closed it,
  or when the link broke; `send()` on a closed link raises `ConnectionClosed`;
- `connect()` to an endpoint nobody listens at raises `TransportError`;
- `stop()` closes the listener and every link the transport made or accepted.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, Final

from m2mpay.errors import TransportError
from m2mpay.lifecycle import Closable, Startable
from m2mpay.wire.codec import MAX_MESSAGE_SIZE

__all__ = [
    "MAX_FRAME_SIZE",
    "FrameData",
    "Link",
    "Transport",
    "check_frame",
    "open_transport",
]

MAX_FRAME_SIZE: Final = MAX_MESSAGE_SIZE + 1024
"""Largest frame a link carries: a maximal message plus room for session framing."""

FrameData = bytes | bytearray | memoryview
"""What `Link.send` takes; it is copied, so the caller may reuse its buffer at once."""


def check_frame(frame: FrameData) -> bytes:
    """`frame` as immutable bytes, or `TransportError` if it is too large to send."""
    if len(frame) > MAX_FRAME_SIZE:
        raise TransportError(
            f"frame of {len(frame)} bytes is above the {MAX_FRAME_SIZE}-byte link limit"
        )
    return bytes(frame)


class Link(Closable):
    """One ordered, reliable, unauthenticated frame pipe to a remote endpoint."""

    @property
    @abc.abstractmethod
    def remote(self) -> str:
        """A description of the other end, for logs and errors (not an identity)."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once this side closed the link or saw it close or break."""

    @abc.abstractmethod
    async def send(self, frame: FrameData) -> None:
        """Queue one frame for delivery; `ConnectionClosed` if the link is closed."""

    async def send_many(self, frames: Sequence[FrameData]) -> None:
        """Send frames in order, batched into as few writes as the transport allows."""
        for frame in frames:
            await self.send(frame)

    @abc.abstractmethod
    async def recv(self) -> bytes:
        """The next frame; `ConnectionClosed` once the link is closed or broken."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close both directions; idempotent. The other side's `recv` then raises."""

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self.remote} {state}>"


class Transport(Startable):
    """Makes links: listens at `endpoint` and connects to other endpoints."""

    @property
    @abc.abstractmethod
    def endpoint(self) -> str:
        """The URL others pass to `connect` to reach this transport (valid after `start`)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin listening (and connect to the broker, for MQTT)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop listening and close every link; idempotent."""

    @abc.abstractmethod
    async def connect(self, endpoint: str) -> Link:
        """A new link to `endpoint`; `TransportError` if it cannot be reached."""

    @abc.abstractmethod
    async def accept(self) -> Link:
        """The next incoming link; `TransportError` once the transport is stopped."""


def open_transport(url_or_kind: str, **options: Any) -> Transport:
    """Build a transport (not yet started) from a URL or a kind name.

    - ``mem://NAME`` or ``memory``: in-process (`MemoryTransport`; a free name if none);
    - ``ws://HOST:PORT`` or ``websocket``: WebSocket server there (port 0 = any free port);
    - ``mqtt://HOST:PORT`` or ``mqtt``: MQTT through that broker; needs ``own_address=``.

    Extra keyword options go to the transport's constructor.
    """
    from urllib.parse import urlsplit

    kind, _, rest = url_or_kind.partition("://")
    if kind in ("mem", "memory"):
        from m2mpay.wire.memory import MemoryTransport

        return MemoryTransport(rest or None, **options)
    if kind in ("ws", "websocket"):
        from m2mpay.wire.websocket import WebSocketTransport

        if rest:
            parts = urlsplit(url_or_kind)
            options.setdefault("host", parts.hostname or "127.0.0.1")
            options.setdefault("port", parts.port or 0)
        return WebSocketTransport(**options)
    if kind == "mqtt":
        from m2mpay.wire.mqtt import MqttTransport

        if rest:
            parts = urlsplit(url_or_kind)
            options.setdefault("broker_host", parts.hostname or "127.0.0.1")
            options.setdefault("broker_port", parts.port or 1883)
        return MqttTransport(**options)
    raise TransportError(f"unknown transport {url_or_kind!r} (use mem://, ws:// or mqtt://)")
