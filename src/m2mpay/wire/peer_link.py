"""Authenticated peer links over any `Link`.

`open_peer_link` runs the handshake of `m2mpay.wire.handshake` on a raw link and
returns a `PeerLink` bound to the peer's proven address. After it, every
frame is protected:

    frame = counter (u64, big-endian) || body || tag (16 bytes)
    tag   = HMAC-SHA256(key of the sending direction, counter || body)[:16]

Counters start at 0 in each direction and must arrive exactly in order: the
link is ordered and reliable, so any other counter means a frame was replayed,
dropped, reordered or injected. A frame whose tag or counter is wrong raises
`AuthenticationFailed` and closes the peer link, because after it nothing on the
link can be trusted. A frame that is authentic but whose body does not decode
raises `MalformedMessage` and the peer link goes on: the peer is who it claims
to be and merely sent something this node does not understand.

Frames are authenticated, not encrypted: payments and acknowledgements are
signed statements about public channels. Run WebSocket over TLS (wss://) or
MQTT over TLS where confidentiality matters.

Codecs are per direction: each side encodes with the codec it declared in its
Hello and decodes with the codec its peer declared, so a CBOR device talks to
a JSON host without either changing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import struct
from collections.abc import Sequence
from typing import Final

from m2mpay.channel.messages import Message
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import AuthenticationFailed, ConnectionClosed, MalformedMessage, WrongChain
from m2mpay.lifecycle import Closable
from m2mpay.wire.codec import Codec, codec_by_name
from m2mpay.wire.handshake import (
    UNKNOWN_CHAIN,
    Hello,
    auth_digest,
    decode_auth,
    encode_auth,
    session_keys,
    transcript_hash,
    verify_auth,
)
from m2mpay.wire.transport import MAX_FRAME_SIZE, Link

__all__ = ["TAG_SIZE", "PeerLink", "open_peer_link"]

TAG_SIZE: Final = 16
_COUNTER: Final = struct.Struct(">Q")
_OVERHEAD: Final = _COUNTER.size + TAG_SIZE


class _FrameSealer:
    """Counter and HMAC of one direction; the keyed HMAC state is computed once."""

    __slots__ = ("_base", "counter")

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self.counter = 0

    def tag(self, header: bytes, body: bytes) -> bytes:
        mac = self._base.copy()
        mac.update(header)
        mac.update(body)
        return mac.digest()[:TAG_SIZE]

    def seal(self, body: bytes) -> bytes:
        header = _COUNTER.pack(self.counter)
        self.counter += 1
        return header + body + self.tag(header, body)

    def open(self, frame: bytes) -> bytes:
        """The body of the next frame, or `AuthenticationFailed` saying what is wrong with it."""
        if len(frame) < _OVERHEAD:
            raise AuthenticationFailed(f"frame of {len(frame)} bytes is too short to be sealed")
        # Every transport keeps to this limit; a link that does not is not hashed through.
        if len(frame) > MAX_FRAME_SIZE:
            raise AuthenticationFailed(f"frame of {len(frame)} bytes is above the link limit")
        header = frame[: _COUNTER.size]
        body = frame[_COUNTER.size : -TAG_SIZE]
        if not hmac.compare_digest(self.tag(header, body), frame[-TAG_SIZE:]):
            raise AuthenticationFailed("frame tag does not verify: altered or forged frame")
        (counter,) = _COUNTER.unpack(header)
        if counter != self.counter:
            what = "replayed" if counter < self.counter else "out of order (frames missing)"
            raise AuthenticationFailed(f"frame counter {counter}, expected {self.counter}: {what}")
        self.counter += 1
        return body


class PeerLink(Closable):
    """A link bound to the proven address of its peer; see the module docstring."""

    def __init__(
        self,
        link: Link,
        local: Address,
        peer: Address,
        codec: Codec,
        peer_codec: Codec,
        send_key: bytes,
        recv_key: bytes,
    ) -> None:
        self._link = link
        self._local = local
        self._peer = peer
        self._codec = codec
        self._peer_codec = peer_codec
        self._sender = _FrameSealer(send_key)
        self._receiver = _FrameSealer(recv_key)
        self._send_lock = asyncio.Lock()
        self._failure: str | None = None

    @property
    def peer(self) -> Address:
        return self._peer

    @property
    def local(self) -> Address:
        return self._local

    @property
    def link(self) -> Link:
        return self._link

    @property
    def codec(self) -> Codec:
        """The codec this side writes with."""
        return self._codec

    @property
    def peer_codec(self) -> Codec:
        """The codec the peer writes with (and this side reads)."""
        return self._peer_codec

    @property
    def closed(self) -> bool:
        return self._failure is not None or self._link.closed

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise ConnectionClosed(
                f"peer link with {self._peer.checksum} is closed: {self._failure}"
            )

    async def send(self, message: Message) -> None:
        """Encode, seal and send one message."""
        self._check_usable()
        body = self._codec.encode(message)
        # The lock keeps counters in the order frames enter the link when
        # several tasks send at once.
        async with self._send_lock:
            await self._link.send(self._sender.seal(body))

    async def send_encoded(self, body: bytes) -> None:
        """Seal and send a body already encoded with `codec` (relays; tests of bad peers).

        Nothing checks that `body` decodes: the peer gets `MalformedMessage` if not.
        """
        self._check_usable()
        async with self._send_lock:
            await self._link.send(self._sender.seal(bytes(body)))

    async def send_many(self, messages: Sequence[Message]) -> None:
        """Send messages in order, in one batch on the link."""
        self._check_usable()
        bodies = [self._codec.encode(message) for message in messages]
        async with self._send_lock:
            await self._link.send_many([self._sender.seal(body) for body in bodies])

    async def recv(self) -> Message:
        """The next message from the peer.

        `AuthenticationFailed` (and the peer link is closed) for a forged, altered,
        replayed or reordered frame; `MalformedMessage` (and the peer link goes on)
        for an authentic frame that does not decode; `ConnectionClosed` once the
        link or the peer link is closed.
        """
        self._check_usable()
        frame = await self._link.recv()
        try:
            body = self._receiver.open(frame)
        except AuthenticationFailed as exc:
            await self._fail(str(exc))
            raise
        return self._peer_codec.decode(body)

    async def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
        await self._link.close()

    async def close(self) -> None:
        """Close the peer link and its transport link; idempotent."""
        if self._failure is None:
            self._failure = "closed by this side"
        await self._link.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<PeerLink {self._local.checksum} ↔ {self._peer.checksum} {state}>"


async def open_peer_link(
    link: Link,
    identity: PrivateKey,
    codec: Codec,
    *,
    expected_peer: Address | None = None,
    chain: bytes = UNKNOWN_CHAIN,
    timeout: float = 10.0,
) -> PeerLink:
    """Authenticate both ends of `link` and return the peer link.

    Both peers call this at the same time; there are no roles. Raises
    `AuthenticationFailed` (the peer did not prove the address it claims, is
    not `expected_peer`, or did not finish within `timeout` seconds),
    `WrongChain` (both sides name the chain they settle on, by its genesis hash, and
    the two differ: nothing either signs could ever be settled by the other),
    `MalformedMessage` (its handshake frames are not well formed, or it speaks
    another protocol version or an unknown codec) or `ConnectionClosed`; the
    link is closed on any failure.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _handshake(link, identity, codec, expected_peer, chain)
    except TimeoutError:
        await link.close()
        raise AuthenticationFailed(
            f"peer at {link.remote} did not complete the handshake within {timeout:g} s"
        ) from None
    except BaseException:
        await link.close()
        raise


async def _handshake(
    link: Link, identity: PrivateKey, codec: Codec, expected_peer: Address | None, chain: bytes
) -> PeerLink:
    mine = Hello.create(identity, codec.name, chain)
    await link.send(mine.encode())
    peer = Hello.decode(await link.recv())
    if peer.address == mine.address:
        raise AuthenticationFailed("peer claims this node's own address")
    if peer.nonce == mine.nonce:
        raise AuthenticationFailed("peer echoed this node's nonce")
    if expected_peer is not None and peer.address != expected_peer:
        raise AuthenticationFailed(
            f"peer is {peer.address.checksum}, expected {Address(expected_peer).checksum}"
        )
    if UNKNOWN_CHAIN not in (peer.chain, chain) and peer.chain != chain:
        raise WrongChain(
            f"peer {peer.address.checksum} settles on another chain: its genesis is "
            f"0x{peer.chain.hex()}, this node's 0x{chain.hex()}"
        )
    try:
        peer_codec = codec_by_name(peer.codec)
    except MalformedMessage as exc:
        raise MalformedMessage(f"peer declared a codec this node lacks: {exc}") from None
    transcript = transcript_hash(mine, peer)
    await link.send(encode_auth(identity.sign_digest(auth_digest(transcript, mine.address))))
    verify_auth(transcript, peer, decode_auth(await link.recv()))
    send_key, recv_key = session_keys(identity, mine, peer, transcript)
    return PeerLink(link, mine.address, peer.address, codec, peer_codec, send_key, recv_key)
