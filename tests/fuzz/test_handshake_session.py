"""Handshake frames (Hello, Auth) and sealed session frames against hostile bytes: the
handshake raises `MalformedMessage` or `AuthenticationFailed` (both `ProtocolError`); a
session raises `AuthenticationFailed` and closes for a frame that is not sealed with its
key, and `MalformedMessage` and goes on for an authentic frame that does not decode."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.crypto import PrivateKey
from m2mpay.errors import AuthenticationFailed, MalformedMessage
from m2mpay.wire import CborCodec, JsonCodec, MemoryTransport, PeerLink, open_peer_link
from m2mpay.wire.handshake import MAX_HELLO_SIZE, Hello, decode_auth, encode_auth
from m2mpay.wire.transport import MAX_FRAME_SIZE
from tests.fuzz.hostile import FUZZ, TEN_MB, peak_memory, truncations
from tests.wire.helpers import payment

pytestmark = pytest.mark.timeout(60)

ALICE: Final = PrivateKey(bytes(31) + b"\x0a")
BOB: Final = PrivateKey(bytes(31) + b"\x0b")
HELLO: Final = Hello.create(ALICE, "cbor").encode()
AUTH: Final = encode_auth(ALICE.sign_digest(bytes(32)))


def _hello_or_refusal(frame: Any) -> None:
    try:
        hello = Hello.decode(frame)
    except (MalformedMessage, AuthenticationFailed):
        return
    assert hello.encode() == frame  # what decodes is exactly what a Hello writes


def _auth_or_refusal(frame: Any) -> None:
    with contextlib.suppress(MalformedMessage, AuthenticationFailed):
        decode_auth(frame)


edits = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4)


def _edited(frame: bytes, changes: list[tuple[int, int]]) -> bytes:
    data = bytearray(frame)
    for where, value in changes:
        data[where % len(data)] = value
    return bytes(data)


@given(frame=st.binary(max_size=300), prefixed=st.booleans(), kind=st.sampled_from([1, 2]))
@FUZZ
def test_any_bytes_are_a_hello_an_auth_or_a_protocol_error(
    frame: bytes, prefixed: bool, kind: int
) -> None:
    if prefixed:  # past the magic, where the parsing starts
        frame = b"M2MP" + bytes([kind]) + frame
    _hello_or_refusal(frame)
    _auth_or_refusal(frame)


@given(changes=edits)
@FUZZ
def test_edited_handshake_frames_are_refused_or_still_well_formed(
    changes: list[tuple[int, int]],
) -> None:
    _hello_or_refusal(_edited(HELLO, changes))
    _auth_or_refusal(_edited(AUTH, changes))


@pytest.mark.parametrize("frame", [HELLO, AUTH], ids=["hello", "auth"])
def test_truncated_and_oversized_handshake_frames_are_refused(frame: bytes) -> None:
    for prefix in truncations(frame):
        with pytest.raises(MalformedMessage):
            Hello.decode(prefix)
        with pytest.raises(MalformedMessage):
            decode_auth(prefix)
    huge = frame + bytes(TEN_MB)
    with pytest.raises(MalformedMessage, match="above"):
        Hello.decode(huge)
    with pytest.raises(MalformedMessage, match="above"):
        decode_auth(huge)
    assert peak_memory(lambda: Hello.decode(huge)) < 16 * 1024
    assert len(HELLO) <= MAX_HELLO_SIZE


@pytest.mark.parametrize("frame", [None, 12, "M2MP", [1, 2], bytearray(HELLO), memoryview(HELLO)])
def test_a_handshake_frame_that_is_not_bytes_is_refused(frame: Any) -> None:
    # Before, anything without a len() (None, an integer) raised TypeError.
    with pytest.raises(MalformedMessage):
        Hello.decode(frame)
    with pytest.raises(MalformedMessage):
        decode_auth(frame)


# -- sealed session frames ------------------------------------------------------------------


async def _sessions(codec_a: Any, codec_b: Any) -> tuple[PeerLink, PeerLink, list[MemoryTransport]]:
    server, client = MemoryTransport(), MemoryTransport()
    await server.start()
    await client.start()
    link_a = await client.connect(server.endpoint)
    link_b = await server.accept()
    alice, bob = await asyncio.gather(
        open_peer_link(link_a, ALICE, codec_a), open_peer_link(link_b, BOB, codec_b)
    )
    return alice, bob, [client, server]


async def _stop(transports: list[MemoryTransport]) -> None:
    for transport in transports:
        await transport.stop()


@given(bodies=st.lists(st.binary(max_size=200), min_size=1, max_size=5), cbor=st.booleans())
@settings(FUZZ, max_examples=40)
def test_authentic_frames_that_do_not_decode_leave_the_session_open(
    bodies: list[bytes], cbor: bool
) -> None:
    async def exchange() -> None:
        codec = CborCodec() if cbor else JsonCodec()
        alice, bob, transports = await _sessions(codec, JsonCodec())
        try:
            for body in bodies:
                await alice.send_encoded(body)
                with contextlib.suppress(MalformedMessage):
                    await bob.recv()
            await alice.send(payment(3))
            assert await bob.recv() == payment(3)  # the session went on
        finally:
            await _stop(transports)

    asyncio.run(exchange())


@given(frame=st.binary(max_size=200))
@settings(FUZZ, max_examples=40)
def test_a_frame_not_sealed_with_the_session_key_closes_the_session(frame: bytes) -> None:
    async def exchange() -> None:
        alice, bob, transports = await _sessions(CborCodec(), CborCodec())
        try:
            await alice.link.send(frame)  # around the sealer: forged, replayed or garbage
            with pytest.raises(AuthenticationFailed):
                await bob.recv()
            assert bob.closed
        finally:
            await _stop(transports)

    asyncio.run(exchange())


def test_a_frame_above_the_link_limit_is_refused_before_it_is_hashed() -> None:
    # No transport delivers one; a session does not rely on that.
    link = _Oversized(MAX_FRAME_SIZE + 1)
    session = PeerLink(
        link,  # type: ignore[arg-type]
        BOB.address,
        ALICE.address,
        CborCodec(),
        CborCodec(),
        bytes(32),
        bytes(32),
    )

    async def receive() -> None:
        with pytest.raises(AuthenticationFailed, match="above the link limit"):
            await session.recv()

    asyncio.run(receive())
    assert link.closed


class _Oversized:
    """A link that hands over one frame larger than any transport carries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.closed = False
        self.remote = "oversized"

    async def recv(self) -> bytes:
        return bytes(self.size)

    async def close(self) -> None:
        self.closed = True
