"""One logical link of the MQTT transport: sequencing, reordering and close.

See `m2mpay.wire.mqtt_frames` for the header and the rules this implements.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from m2mpay.crypto import Address
from m2mpay.errors import ConnectionClosed, TransportError
from m2mpay.wire.mqtt_frames import FrameKind, pack, topic_to
from m2mpay.wire.transport import FrameData, Link, check_frame

if TYPE_CHECKING:
    from m2mpay.wire.mqtt import MqttTransport

__all__ = ["MAX_EARLY_BYTES", "MAX_EARLY_FRAMES", "MqttLink"]

MAX_EARLY_FRAMES: Final = 1024
"""Frames held while waiting for a missing earlier one; past this the link is broken."""
MAX_EARLY_BYTES: Final = 16 * 1024 * 1024
"""Bytes of early frames held (1024 frames of 1 MiB would be 1 GiB); past this the link is
broken too."""


class _Closed:
    """Marks the end of a link in its inbox; `reason` goes into `ConnectionClosed`."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class MqttLink(Link):
    """A link to `peer` identified by `link_id`, multiplexed over the transport's client."""

    def __init__(
        self, transport: MqttTransport, peer: Address, link_id: bytes, *, initiator: bool
    ) -> None:
        self._transport = transport
        self.peer = peer
        self.link_id = link_id
        self.initiator = initiator
        self.topic = topic_to(peer, transport.own_address)
        self.peer_instance: bytes | None = None
        self._accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._send_seq = 0
        self._recv_seq = 0
        self._early: dict[int, tuple[FrameKind, bytes]] = {}
        self._early_bytes = 0
        self._inbox: asyncio.Queue[bytes | _Closed] = asyncio.Queue()
        self._closed = False
        self._ended: _Closed | None = None  # set once the end is queued

    @property
    def remote(self) -> str:
        return f"mqtt peer {self.peer.checksum} (link {self.link_id.hex()})"

    @property
    def closed(self) -> bool:
        return self._closed or self._ended is not None

    # -- called by the transport ----------------------------------------------------

    async def opened(self) -> None:
        await asyncio.shield(self._accepted)

    def accepted(self, instance: bytes) -> None:
        if self.initiator and not self._accepted.done():
            self.peer_instance = instance
            self._accepted.set_result(None)

    def arrived(self, kind: FrameKind, seq: int, payload: bytes) -> None:
        """A DATA or CLOSE frame from the peer, possibly duplicated or early."""
        if self._ended is not None or seq < self._recv_seq:
            return  # after the end, or a redelivery of a frame already delivered
        if seq > self._recv_seq:
            if seq in self._early:
                return  # a redelivery of a frame already held
            if (
                len(self._early) >= MAX_EARLY_FRAMES
                or self._early_bytes + len(payload) > MAX_EARLY_BYTES
            ):
                self.broken(f"frame {self._recv_seq} never arrived (lost by the broker?)")
                self._transport._discard(self)
            else:
                self._early[seq] = (kind, payload)
                self._early_bytes += len(payload)
            return
        self._take(kind, payload)
        while self._ended is None and self._recv_seq in self._early:
            held_kind, held = self._early.pop(self._recv_seq)
            self._early_bytes -= len(held)
            self._take(held_kind, held)

    def _take(self, kind: FrameKind, payload: bytes) -> None:
        self._recv_seq += 1
        if kind is FrameKind.DATA:
            self._inbox.put_nowait(payload)
        else:
            self._end(f"link to {self.remote} was closed by the peer")
            self._transport._discard(self)

    def _end(self, reason: str) -> None:
        if self._ended is None:
            self._ended = _Closed(reason)
            self._early.clear()
            self._early_bytes = 0
            self._inbox.put_nowait(self._ended)

    def broken(self, reason: str) -> None:
        """The link can no longer carry frames (broker lost, peer restarted, gap)."""
        self._end(f"link to {self.remote} is broken: {reason}")
        if not self._accepted.done():
            self._accepted.set_exception(ConnectionClosed(reason))
            self._accepted.exception()  # retrieved: connect() reports it its own way

    # -- Link -----------------------------------------------------------------------

    def _next_header_seq(self) -> int:
        if self._closed or self._ended is not None:
            raise ConnectionClosed(f"link to {self.remote} is closed")
        seq = self._send_seq
        self._send_seq += 1
        return seq

    async def send(self, frame: FrameData) -> None:
        data = check_frame(frame)
        seq = self._next_header_seq()
        instance = self._transport.instance
        await self._transport.publish(
            self.topic, pack(FrameKind.DATA, instance, self.link_id, seq, data)
        )

    async def send_many(self, frames: Sequence[FrameData]) -> None:
        batch = [check_frame(frame) for frame in frames]
        instance = self._transport.instance
        for data in batch:
            seq = self._next_header_seq()
            await self._transport.publish(
                self.topic, pack(FrameKind.DATA, instance, self.link_id, seq, data)
            )

    async def recv(self) -> bytes:
        if self._closed:
            raise ConnectionClosed(f"link to {self.remote} is closed")
        item = await self._inbox.get()
        if isinstance(item, bytes):
            return item
        self._inbox.put_nowait(item)  # every later recv reports the same end
        raise ConnectionClosed(item.reason)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._transport._discard(self)
        if self._ended is None:
            seq = self._send_seq
            self._end(f"link to {self.remote} is closed")
            # If the broker is gone, the peer learns of it from its own broker connection.
            with contextlib.suppress(TransportError):
                await self._transport.publish(
                    self.topic, pack(FrameKind.CLOSE, self._transport.instance, self.link_id, seq)
                )
