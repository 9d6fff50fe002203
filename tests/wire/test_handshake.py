"""Handshake refusals: impostors, reflections, garbage and silence."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.crypto import PrivateKey
from m2mpay.errors import AuthenticationFailed, ConnectionClosed, MalformedMessage, WrongChain
from m2mpay.wire import (
    UNKNOWN_CHAIN,
    CborCodec,
    Link,
    MemoryTransport,
    Transport,
    open_peer_link,
)
from m2mpay.wire.handshake import (
    Hello,
    auth_digest,
    decode_auth,
    encode_auth,
    session_keys,
    transcript_hash,
)

from .helpers import GUARD, linked

HONEST = PrivateKey(bytes(31) + b"\x21")
VICTIM = PrivateKey(bytes(31) + b"\x22")
MALLORY = PrivateKey(bytes(31) + b"\x23")

Script = Callable[[Link], Awaitable[None]]


async def against(link_honest: Link, link_peer: Link, script: Script) -> BaseException | None:
    """Run an honest `open_peer_link` against a scripted peer; what the honest side raised."""
    honest = asyncio.ensure_future(open_peer_link(link_honest, HONEST, CborCodec(), timeout=GUARD))
    peer = asyncio.ensure_future(script(link_peer))
    async with asyncio.timeout(GUARD):
        await asyncio.wait((honest,))
    peer.cancel()
    await asyncio.gather(peer, return_exceptions=True)
    return honest.exception()


async def test_a_peer_signing_with_another_key_than_the_claimed_one_is_refused(
    transports: list[Transport],
) -> None:
    link_honest, link_peer = await linked(transports[0], transports[1])

    async def impostor(link: Link) -> None:
        claimed = Hello.create(VICTIM, "cbor")  # the victim's address and public key
        await link.send(claimed.encode())
        theirs = Hello.decode(await link.recv())
        digest = auth_digest(transcript_hash(claimed, theirs), VICTIM.address)
        await link.send(encode_auth(MALLORY.sign_digest(digest)))  # but Mallory's key
        await link.recv()

    error = await against(link_honest, link_peer, impostor)
    assert isinstance(error, AuthenticationFailed)
    assert f"by {MALLORY.address.checksum}, not by the claimed {VICTIM.address.checksum}" in str(
        error
    )
    assert link_honest.closed


async def test_a_signature_over_another_transcript_is_refused() -> None:
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, link_peer = await linked(t0, t1)

        async def stale(link: Link) -> None:
            mine = Hello.create(MALLORY, "cbor")
            await link.send(mine.encode())
            await link.recv()
            old_transcript = transcript_hash(mine, Hello.create(HONEST, "cbor"))
            digest = auth_digest(old_transcript, MALLORY.address)
            await link.send(encode_auth(MALLORY.sign_digest(digest)))
            await link.recv()

        error = await against(link_honest, link_peer, stale)
    assert isinstance(error, AuthenticationFailed)
    assert "not by the claimed" in str(error)


async def test_an_address_that_is_not_the_public_keys_is_refused() -> None:
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, link_peer = await linked(t0, t1)

        async def mismatched(link: Link) -> None:
            hello = Hello.create(MALLORY, "cbor")
            lying = Hello(hello.version, VICTIM.address, hello.public_key, hello.nonce, "cbor")
            await link.send(lying.encode())
            await link.recv()

        error = await against(link_honest, link_peer, mismatched)
    assert isinstance(error, AuthenticationFailed)
    assert "public key of" in str(error)


async def test_a_reflected_handshake_is_refused() -> None:
    """A peer that echoes our own Hello and Auth back must not pass as us."""
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, link_peer = await linked(t0, t1)

        async def mirror(link: Link) -> None:
            while True:
                await link.send(await link.recv())

        error = await against(link_honest, link_peer, mirror)
    assert isinstance(error, AuthenticationFailed)
    assert "own address" in str(error)


async def test_a_silent_peer_times_out_as_authentication_failure() -> None:
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, _ = await linked(t0, t1)
        with pytest.raises(AuthenticationFailed, match="did not complete the handshake"):
            await open_peer_link(link_honest, HONEST, CborCodec(), timeout=0.05)
        assert link_honest.closed


async def test_a_peer_that_hangs_up_mid_handshake_is_a_closed_connection() -> None:
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, link_peer = await linked(t0, t1)

        async def hang_up(link: Link) -> None:
            await link.send(Hello.create(MALLORY, "cbor").encode())
            await link.close()

        error = await against(link_honest, link_peer, hang_up)
    assert isinstance(error, ConnectionClosed)


def _hello_bytes(**changes: object) -> bytes:
    hello = Hello.create(MALLORY, "cbor").encode()
    raw = bytearray(hello)
    if "version" in changes:
        raw[5] = int(str(changes["version"]))
    if "codec" in changes:
        name = str(changes["codec"]).encode("latin-1")
        raw[154:] = bytes([len(name)]) + name
    if "public_key" in changes:
        raw[26:90] = bytes(64)
    return bytes(raw)


@pytest.mark.parametrize(
    ("frame", "error", "reason"),
    [
        (b"", MalformedMessage, "expected a handshake Hello"),
        (b"GET / HTTP/1.1\r\n", MalformedMessage, "expected a handshake Hello"),
        (b"M2MP\x02" + bytes(65), MalformedMessage, "got frame kind 2"),
        (_hello_bytes()[:100], MalformedMessage, "too short"),
        (_hello_bytes() + b"x", MalformedMessage, "codec name"),
        (_hello_bytes(version=2), MalformedMessage, "protocol version 2"),
        (_hello_bytes(codec="xml"), MalformedMessage, "codec this node lacks"),
        (_hello_bytes(codec="c\u00e9r"), MalformedMessage, "not a plain name"),
        (_hello_bytes(public_key=True), AuthenticationFailed, "not a point"),
    ],
    ids=[
        "empty",
        "http",
        "auth-first",
        "truncated",
        "trailing",
        "version",
        "codec",
        "codec-chars",
        "bad-point",
    ],
)
async def test_malformed_hellos_are_refused_with_a_reason(
    frame: bytes, error: type[Exception], reason: str
) -> None:
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, link_peer = await linked(t0, t1)

        async def send_it(link: Link) -> None:
            await link.send(frame)
            await link.recv()

        raised = await against(link_honest, link_peer, send_it)
    assert isinstance(raised, error)
    assert reason in str(raised)
    assert link_honest.closed


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        (b"M2MP\x02" + bytes(10), "Auth of 15 bytes"),
        (b"M2MP\x02" + b"\x01" * 32 + b"\xff" * 32 + b"\x1b", "malformed"),
        (b"M2MP\x01" + bytes(65), "got frame kind 1"),
    ],
    ids=["short", "high-s", "hello-again"],
)
async def test_malformed_auths_are_refused(auth: bytes, reason: str) -> None:
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, link_peer = await linked(t0, t1)

        async def bad_auth(link: Link) -> None:
            await link.send(Hello.create(MALLORY, "cbor").encode())
            await link.recv()
            await link.send(auth)
            await link.recv()

        raised = await against(link_honest, link_peer, bad_auth)
    assert isinstance(raised, MalformedMessage | AuthenticationFailed)
    assert reason in str(raised)


@settings(max_examples=60, deadline=None)
@given(hello=st.binary(max_size=200), auth=st.binary(max_size=100))
async def test_random_handshake_frames_raise_only_protocol_errors(
    hello: bytes, auth: bytes
) -> None:
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, link_peer = await linked(t0, t1)

        async def garbage(link: Link) -> None:
            await link.send(hello)
            await link.send(auth)
            await link.recv()

        raised = await against(link_honest, link_peer, garbage)
    assert isinstance(raised, MalformedMessage | AuthenticationFailed)


def test_transcript_is_symmetric_and_keys_mirror() -> None:
    a, b = Hello.create(HONEST, "cbor"), Hello.create(VICTIM, "json")
    transcript = transcript_hash(a, b)
    assert transcript == transcript_hash(b, a)
    assert Hello.decode(a.encode()) == a
    assert auth_digest(transcript, HONEST.address) != auth_digest(transcript, VICTIM.address)
    send_a, recv_a = session_keys(HONEST, a, b, transcript)
    send_b, recv_b = session_keys(VICTIM, b, a, transcript)
    assert (send_a, recv_a) == (recv_b, send_b)
    assert send_a != recv_a
    signature = HONEST.sign_digest(auth_digest(transcript, HONEST.address))
    assert decode_auth(encode_auth(signature)) == signature


CHAIN_ONE, CHAIN_TWO = b"\x01" * 32, b"\x02" * 32


@pytest.mark.parametrize(
    ("honest", "peer", "refused"),
    [
        (CHAIN_ONE, CHAIN_TWO, True),
        (CHAIN_TWO, CHAIN_ONE, True),
        (CHAIN_ONE, CHAIN_ONE, False),
        (CHAIN_ONE, UNKNOWN_CHAIN, False),  # a device that has not heard from its host yet
        (UNKNOWN_CHAIN, CHAIN_TWO, False),
    ],
)
async def test_peers_on_different_chains_refuse_each_other_by_name(
    honest: bytes, peer: bytes, refused: bool
) -> None:
    async with MemoryTransport() as t0, MemoryTransport() as t1:
        link_honest, link_peer = await linked(t0, t1)
        outcomes = await asyncio.gather(
            open_peer_link(link_honest, HONEST, CborCodec(), chain=honest, timeout=GUARD),
            open_peer_link(link_peer, VICTIM, CborCodec(), chain=peer, timeout=GUARD),
            return_exceptions=True,
        )
    if not refused:
        assert all(not isinstance(o, BaseException) for o in outcomes), outcomes
        return
    for outcome, mine, theirs in zip(outcomes, (honest, peer), (peer, honest), strict=True):
        assert isinstance(outcome, WrongChain), outcome
        assert f"its genesis is 0x{theirs.hex()}, this node's 0x{mine.hex()}" in str(outcome)
