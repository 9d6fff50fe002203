"""Authenticated sessions over every transport: handshake, refusals, tampering, interop."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.channel.messages import PaymentMessage
from m2mpay.crypto import PrivateKey
from m2mpay.errors import AuthenticationFailed, ConnectionClosed, MalformedMessage
from m2mpay.wire import CborCodec, Codec, JsonCodec, Link, PeerLink, Transport, open_peer_link

from .helpers import GUARD, TamperLink, linked, payment, recorder, sample_messages

ALICE = PrivateKey(bytes(31) + b"\x0a")
BOB = PrivateKey(bytes(31) + b"\x0b")
MALLORY = PrivateKey(bytes(31) + b"\x0c")


async def both_sessions(
    link_a: Link,
    link_b: Link,
    codec_a: Codec | None = None,
    codec_b: Codec | None = None,
) -> tuple[PeerLink, PeerLink]:
    async with asyncio.timeout(GUARD):
        return await asyncio.gather(
            open_peer_link(link_a, ALICE, codec_a or CborCodec(), expected_peer=BOB.address),
            open_peer_link(link_b, BOB, codec_b or CborCodec(), expected_peer=ALICE.address),
        )


async def test_handshake_binds_each_side_to_the_others_address(
    transports: list[Transport],
) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    alice, bob = await both_sessions(link_a, link_b)
    assert (alice.local, alice.peer) == (ALICE.address, BOB.address)
    assert (bob.local, bob.peer) == (BOB.address, ALICE.address)
    messages = sample_messages()
    await alice.send(messages[0])
    await alice.send_many(messages[1:])
    await bob.send_many(messages)
    async with asyncio.timeout(GUARD):
        assert [await bob.recv() for _ in messages] == messages
        assert [await alice.recv() for _ in messages] == messages
    await alice.close()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(bob.recv(), GUARD)
    with pytest.raises(ConnectionClosed):
        await alice.send(messages[0])


async def test_handshake_without_expected_peer_learns_the_peer(
    transports: list[Transport],
) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    alice, bob = await asyncio.gather(
        open_peer_link(link_a, ALICE, JsonCodec()), open_peer_link(link_b, BOB, JsonCodec())
    )
    assert alice.peer == BOB.address
    assert bob.peer == ALICE.address


@pytest.mark.parametrize(
    ("codec_a", "codec_b"),
    [(JsonCodec(), CborCodec()), (CborCodec(), JsonCodec()), (JsonCodec(), JsonCodec())],
    ids=["json-cbor", "cbor-json", "json-json"],
)
async def test_each_side_writes_its_own_codec_and_reads_the_peers(
    transports: list[Transport], codec_a: Codec, codec_b: Codec
) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    spy = TamperLink(link_a)
    seen: list[bytes] = []
    spy.tamper = recorder(seen)
    alice, bob = await both_sessions(spy, link_b, codec_a, codec_b)
    assert (alice.codec.name, alice.peer_codec.name) == (codec_a.name, codec_b.name)
    assert (bob.codec.name, bob.peer_codec.name) == (codec_b.name, codec_a.name)
    messages = sample_messages()
    await alice.send_many(messages)
    await bob.send_many(messages)
    async with asyncio.timeout(GUARD):
        assert [await bob.recv() for _ in messages] == messages
        assert [await alice.recv() for _ in messages] == messages
    # What alice put on the wire after the handshake is in her own codec.
    body = seen[2][8:-16]
    assert body == codec_a.encode(messages[0])


async def test_expected_peer_mismatch_is_refused(transports: list[Transport]) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    results = await asyncio.gather(
        open_peer_link(link_a, ALICE, CborCodec(), expected_peer=MALLORY.address, timeout=GUARD),
        open_peer_link(link_b, BOB, CborCodec(), timeout=GUARD),
        return_exceptions=True,
    )
    assert isinstance(results[0], AuthenticationFailed)
    assert "expected" in str(results[0])
    assert isinstance(results[1], ConnectionClosed | AuthenticationFailed)
    assert link_a.closed


async def test_forged_frame_closes_the_session(transports: list[Transport]) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    tamper = TamperLink(link_a)
    alice, bob = await both_sessions(tamper, link_b)

    def flip_a_bit(index: int, frame: bytes) -> list[bytes]:
        if index == 3:  # the second frame after Hello and Auth
            frame = frame[:12] + bytes([frame[12] ^ 1]) + frame[13:]
        return [frame]

    tamper.tamper = flip_a_bit
    await alice.send_many([payment(1), payment(2), payment(3)])
    async with asyncio.timeout(GUARD):
        assert await bob.recv() == payment(1)
        with pytest.raises(AuthenticationFailed, match="altered or forged"):
            await bob.recv()
        assert bob.closed
        with pytest.raises(ConnectionClosed):
            await bob.recv()
        with pytest.raises(ConnectionClosed):
            await alice.recv()  # bob closed the link under her


async def test_replayed_frame_closes_the_session(transports: list[Transport]) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    tamper = TamperLink(link_a)
    alice, bob = await both_sessions(tamper, link_b)
    recorded: list[bytes] = []

    def replay_the_first(index: int, frame: bytes) -> list[bytes]:
        recorded.append(frame)
        return [frame, recorded[2]] if index == 4 else [frame]

    tamper.tamper = replay_the_first
    await alice.send_many([payment(1), payment(2), payment(3)])
    async with asyncio.timeout(GUARD):
        assert [await bob.recv() for _ in range(3)] == [payment(1), payment(2), payment(3)]
        with pytest.raises(AuthenticationFailed, match="replayed"):
            await bob.recv()
    assert bob.closed


async def test_reordered_frames_close_the_session(transports: list[Transport]) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    tamper = TamperLink(link_a)
    alice, bob = await both_sessions(tamper, link_b)

    def swap(index: int, frame: bytes) -> list[bytes]:
        if index == 2:
            tamper.held.append(frame)
            return []
        if index == 3:
            return [frame, *tamper.held]
        return [frame]

    tamper.tamper = swap
    await alice.send_many([payment(1), payment(2)])
    with pytest.raises(AuthenticationFailed, match="out of order"):
        await asyncio.wait_for(bob.recv(), GUARD)


async def test_a_session_frame_does_not_verify_in_another_session(
    transports: list[Transport],
) -> None:
    first_a, first_b = await linked(transports[0], transports[1])
    spy = TamperLink(first_a)
    captured: list[bytes] = []
    spy.tamper = recorder(captured)
    alice, _ = await both_sessions(spy, first_b)
    await alice.send(payment(1))
    second_a, second_b = await linked(transports[0], transports[1])
    _, bob = await both_sessions(second_a, second_b)
    await second_a.send(captured[2])  # same counter 0, keys of the old session
    with pytest.raises(AuthenticationFailed, match="altered or forged"):
        await asyncio.wait_for(bob.recv(), GUARD)


async def test_authentic_but_undecodable_frame_keeps_the_session(
    transports: list[Transport],
) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    alice, bob = await both_sessions(link_a, link_b)
    await alice.send_encoded(b"\xff not cbor")  # authentic, but no message
    await alice.send(payment(5))
    async with asyncio.timeout(GUARD):
        with pytest.raises(MalformedMessage):
            await bob.recv()
        assert await bob.recv() == payment(5)
    assert not bob.closed


async def test_concurrent_senders_keep_counters_in_order(transports: list[Transport]) -> None:
    link_a, link_b = await linked(transports[0], transports[1])
    alice, bob = await both_sessions(link_a, link_b)

    async def sender(offset: int) -> None:
        for i in range(50):
            await alice.send(payment(offset + i))

    await asyncio.gather(*(sender(1000 * k) for k in range(4)))
    async with asyncio.timeout(GUARD):
        received = [await bob.recv() for _ in range(200)]
    seqs = [m.seq for m in received if isinstance(m, PaymentMessage)]
    assert len(seqs) == len(received)
    assert sorted(seqs) == sorted(1000 * k + i for k in range(4) for i in range(50))
