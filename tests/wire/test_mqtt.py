"""MQTT transport specifics: topic scheme, redelivery, restarts, and an attacker on the broker."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import AuthenticationFailed, ConnectionClosed, TransportError
from m2mpay.wire import CborCodec, MqttTransport, open_peer_link, open_transport
from m2mpay.wire.mqtt_frames import FrameKind, pack, topic_to, unpack
from m2mpay.wire.mqtt_link import MAX_EARLY_FRAMES
from tests.conftest import Broker

from .helpers import GUARD, linked, payment

ALICE = PrivateKey(bytes(31) + b"\x31")
BOB = PrivateKey(bytes(31) + b"\x32")


@pytest.fixture
async def bob(mosquitto: Broker) -> AsyncIterator[MqttTransport]:
    async with MqttTransport(mosquitto.host, mosquitto.port, BOB.address) as transport:
        yield transport


@pytest.fixture
async def raw(mosquitto: Broker) -> AsyncIterator[aiomqtt.Client]:
    """A plain MQTT client: anyone who can reach the broker."""
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        yield client


class HandRolledPeer:
    """Speaks the link protocol by hand through a raw client, to misbehave precisely."""

    def __init__(self, client: aiomqtt.Client, own: Address, peer: Address) -> None:
        self.client = client
        self.own = own
        self.peer = peer
        self.instance = secrets.token_bytes(8)
        self.link = secrets.token_bytes(8)

    async def publish(self, kind: FrameKind, seq: int = 0, payload: bytes = b"") -> None:
        frame = pack(kind, self.instance, self.link, seq, payload)
        await self.client.publish(topic_to(self.peer, self.own), frame, qos=1)


async def test_frames_travel_on_the_documented_topics(
    mosquitto: Broker, bob: MqttTransport, raw: aiomqtt.Client
) -> None:
    await raw.subscribe("m2mpay/v1/#", qos=1)
    async with MqttTransport(mosquitto.host, mosquitto.port, ALICE.address) as alice:
        mine, theirs = await linked(alice, bob)
        await mine.send(b"hello")
        assert await asyncio.wait_for(theirs.recv(), GUARD) == b"hello"
        seen: list[tuple[str, FrameKind]] = []
        async with asyncio.timeout(GUARD):
            async for message in raw.messages:
                assert isinstance(message.payload, bytes)
                parsed = unpack(message.payload)
                assert parsed is not None
                seen.append((message.topic.value, parsed[0].kind))
                if parsed[0].kind is FrameKind.DATA:
                    assert parsed[1] == b"hello"
                    break
    a, b = "0x" + ALICE.address.hex(), "0x" + BOB.address.hex()
    assert seen == [
        (f"m2mpay/v1/{b}/in/{a}", FrameKind.OPEN),
        (f"m2mpay/v1/{a}/in/{b}", FrameKind.ACCEPT),
        (f"m2mpay/v1/{b}/in/{a}", FrameKind.DATA),
    ]


async def test_duplicates_are_dropped_and_order_restored(
    bob: MqttTransport, raw: aiomqtt.Client
) -> None:
    peer = HandRolledPeer(raw, ALICE.address, BOB.address)
    await peer.publish(FrameKind.OPEN)
    link = await asyncio.wait_for(bob.accept(), GUARD)
    for seq in (0, 1, 1, 3, 2, 0, 4, 3):
        await peer.publish(FrameKind.DATA, seq, f"frame {seq}".encode())
    await peer.publish(FrameKind.CLOSE, 5)
    async with asyncio.timeout(GUARD):
        assert [await link.recv() for _ in range(5)] == [f"frame {i}".encode() for i in range(5)]
        with pytest.raises(ConnectionClosed, match="closed by the peer"):
            await link.recv()


async def test_a_gap_that_never_fills_breaks_the_link(
    bob: MqttTransport, raw: aiomqtt.Client
) -> None:
    peer = HandRolledPeer(raw, ALICE.address, BOB.address)
    await peer.publish(FrameKind.OPEN)
    link = await asyncio.wait_for(bob.accept(), GUARD)
    for seq in range(1, MAX_EARLY_FRAMES + 2):  # frame 0 is lost for good
        await peer.publish(FrameKind.DATA, seq, b"x")
    with pytest.raises(ConnectionClosed, match="never arrived"):
        await asyncio.wait_for(link.recv(), GUARD)


async def test_redelivered_open_answers_again_but_opens_nothing(
    bob: MqttTransport, raw: aiomqtt.Client
) -> None:
    await raw.subscribe(f"m2mpay/v1/0x{ALICE.address.hex()}/in/#", qos=1)
    peer = HandRolledPeer(raw, ALICE.address, BOB.address)
    await peer.publish(FrameKind.OPEN)
    await peer.publish(FrameKind.OPEN)  # a QoS 1 redelivery
    first = await asyncio.wait_for(bob.accept(), GUARD)
    await peer.publish(FrameKind.CLOSE, 0)
    await peer.publish(FrameKind.OPEN)  # a late redelivery after the close
    marker = HandRolledPeer(raw, ALICE.address, BOB.address)
    marker.instance = peer.instance
    await marker.publish(FrameKind.OPEN)
    # Topic order is kept, so a ghost link would be accepted before the marker.
    second = await asyncio.wait_for(bob.accept(), GUARD)
    assert second.remote.endswith(f"(link {marker.link.hex()})")
    assert first.remote.endswith(f"(link {peer.link.hex()})")
    answers = 0
    async with asyncio.timeout(GUARD):
        async for message in raw.messages:
            assert isinstance(message.payload, bytes)
            parsed = unpack(message.payload)
            assert parsed is not None
            assert parsed[0].kind is FrameKind.ACCEPT
            if parsed[0].link == marker.link:
                break
            answers += 1
    assert answers == 2  # both OPENs of the live link were answered


async def test_link_opens_past_the_bound_are_neither_answered_nor_held(
    mosquitto: Broker, raw: aiomqtt.Client
) -> None:
    await raw.subscribe(f"m2mpay/v1/0x{ALICE.address.hex()}/in/#", qos=1)
    async with MqttTransport(mosquitto.host, mosquitto.port, BOB.address, max_incoming=3) as bob:
        peer = HandRolledPeer(raw, ALICE.address, BOB.address)
        links = [secrets.token_bytes(8) for _ in range(6)]
        for link in links[:5]:
            peer.link = link
            await peer.publish(FrameKind.OPEN)
        held = [await asyncio.wait_for(bob.accept(), GUARD) for _ in range(3)]
        assert bob.incoming_links == 3
        await held[0].close()
        assert bob.incoming_links == 2
        peer.link = links[5]
        await peer.publish(FrameKind.OPEN)  # topic order: after the two refused ones
        fourth = await asyncio.wait_for(bob.accept(), GUARD)
        assert fourth.remote.endswith(f"(link {links[5].hex()})")
        answered: list[bytes] = []
        async with asyncio.timeout(GUARD):
            async for message in raw.messages:
                assert isinstance(message.payload, bytes)
                parsed = unpack(message.payload)
                assert parsed is not None
                if parsed[0].kind is FrameKind.ACCEPT:
                    answered.append(parsed[0].link)
                    if parsed[0].link == links[5]:
                        break
        assert answered == [links[0], links[1], links[2], links[5]]

        # Frames other than OPEN from senders it has no link with leave no trace.
        for kind in (FrameKind.ACCEPT, FrameKind.DATA, FrameKind.CLOSE):
            forger = HandRolledPeer(raw, PrivateKey.generate().address, BOB.address)
            await forger.publish(kind)
        await fourth.close()
        peer.link = secrets.token_bytes(8)
        await peer.publish(FrameKind.OPEN)
        await asyncio.wait_for(bob.accept(), GUARD)
        assert bob.known_peers == {ALICE.address}


async def test_garbage_on_the_inbox_is_ignored(bob: MqttTransport, raw: aiomqtt.Client) -> None:
    inbox = f"m2mpay/v1/0x{BOB.address.hex()}/in/"
    for topic, payload in [
        (inbox + "0x" + ALICE.address.hex(), b"short"),
        (inbox + "0x" + ALICE.address.hex(), b"\x09" + bytes(25)),
        (inbox + "not-an-address", pack(FrameKind.OPEN, bytes(8), bytes(8), 0)),
        (inbox + "0x" + ALICE.address.hex().upper(), pack(FrameKind.OPEN, bytes(8), bytes(8), 0)),
        (inbox + "0x" + ALICE.address.hex(), pack(FrameKind.DATA, bytes(8), bytes(8), 0, b"x")),
    ]:
        await raw.publish(topic, payload, qos=1)
    peer = HandRolledPeer(raw, ALICE.address, BOB.address)
    await peer.publish(FrameKind.OPEN)
    link = await asyncio.wait_for(bob.accept(), GUARD)
    assert link.remote.endswith(f"(link {peer.link.hex()})")


async def test_a_restarted_peer_replaces_its_old_links(
    mosquitto: Broker, bob: MqttTransport
) -> None:
    before = MqttTransport(mosquitto.host, mosquitto.port, ALICE.address)
    await before.start()
    old_mine, old_theirs = await linked(before, bob)
    other_mine, other_theirs = await linked(before, bob)  # two live links coexist
    await old_mine.send(b"one")
    await other_mine.send(b"two")
    assert await asyncio.wait_for(old_theirs.recv(), GUARD) == b"one"
    assert await asyncio.wait_for(other_theirs.recv(), GUARD) == b"two"
    # The same address comes back as a new transport instance (a crash and restart).
    async with MqttTransport(mosquitto.host, mosquitto.port, ALICE.address) as after:
        new_mine, new_theirs = await linked(after, bob)
        for old in (old_theirs, other_theirs):
            with pytest.raises(ConnectionClosed, match="restarted"):
                await asyncio.wait_for(old.recv(), GUARD)
        await new_mine.send(b"fresh")
        assert await asyncio.wait_for(new_theirs.recv(), GUARD) == b"fresh"
    await before.stop()


async def test_connecting_to_a_restarted_peer_closes_the_links_to_its_old_self(
    mosquitto: Broker,
) -> None:
    async with MqttTransport(mosquitto.host, mosquitto.port, ALICE.address) as alice:
        crashed = MqttTransport(mosquitto.host, mosquitto.port, BOB.address)
        await crashed.start()
        old_mine, _ = await linked(alice, crashed)
        crashed._links.clear()  # a crash: it goes away without closing its links
        await crashed.stop()
        async with MqttTransport(mosquitto.host, mosquitto.port, BOB.address) as restarted:
            new_mine, new_theirs = await linked(alice, restarted)
            with pytest.raises(ConnectionClosed, match="restarted"):
                await asyncio.wait_for(old_mine.recv(), GUARD)
            await new_mine.send(b"after the restart")
            assert await asyncio.wait_for(new_theirs.recv(), GUARD) == b"after the restart"


@pytest.mark.parametrize("side", ["initiator", "responder"])
async def test_a_peer_that_dies_without_closing_breaks_its_links(
    mosquitto: Broker, side: str
) -> None:
    async with MqttTransport(mosquitto.host, mosquitto.port, ALICE.address) as alice:
        doomed = MqttTransport(mosquitto.host, mosquitto.port, BOB.address)
        await doomed.start()
        try:
            if side == "initiator":
                survivor, _ = await linked(alice, doomed)
            else:
                _, survivor = await linked(doomed, alice)
            # Cut the broker connection without DISCONNECT, as a crashed process
            # would: the broker then publishes the transport's will.
            assert doomed._client is not None
            sock = doomed._client._client.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)
            with pytest.raises(ConnectionClosed, match="went away without closing"):
                await asyncio.wait_for(survivor.recv(), GUARD)
        finally:
            with contextlib.suppress(Exception):
                await doomed.stop()


async def test_a_third_party_cannot_inject_or_replay_into_a_session(
    mosquitto: Broker, bob: MqttTransport, raw: aiomqtt.Client
) -> None:
    """Mallory sees every frame on an open broker and publishes with the right headers."""
    await raw.subscribe(f"m2mpay/v1/0x{BOB.address.hex()}/in/#", qos=1)
    async with MqttTransport(mosquitto.host, mosquitto.port, ALICE.address) as alice_transport:
        link_a, link_b = await linked(alice_transport, bob)
        alice, bob_session = await asyncio.gather(
            open_peer_link(link_a, ALICE, CborCodec()), open_peer_link(link_b, BOB, CborCodec())
        )
        await alice.send(payment(1))
        assert await asyncio.wait_for(bob_session.recv(), GUARD) == payment(1)
        captured = []
        async with asyncio.timeout(GUARD):
            async for message in raw.messages:
                assert isinstance(message.payload, bytes)
                parsed = unpack(message.payload)
                assert parsed is not None
                captured.append(parsed)
                if parsed[0].kind is FrameKind.DATA and parsed[0].seq == 2:
                    break  # Hello, Auth, then the payment
        header, sealed = captured[-1]
        topic = topic_to(BOB.address, ALICE.address)
        # Replay the captured payment as the next link frame: the link takes it,
        # the session refuses it.
        replay = pack(FrameKind.DATA, header.instance, header.link, 3, sealed)
        await raw.publish(topic, replay, qos=1)
        with pytest.raises(AuthenticationFailed, match="replayed"):
            await asyncio.wait_for(bob_session.recv(), GUARD)
        assert bob_session.closed


async def test_an_injected_forgery_is_refused(
    mosquitto: Broker, bob: MqttTransport, raw: aiomqtt.Client
) -> None:
    await raw.subscribe(f"m2mpay/v1/0x{BOB.address.hex()}/in/#", qos=1)
    async with MqttTransport(mosquitto.host, mosquitto.port, ALICE.address) as alice_transport:
        link_a, link_b = await linked(alice_transport, bob)
        _, bob_session = await asyncio.gather(
            open_peer_link(link_a, ALICE, CborCodec()), open_peer_link(link_b, BOB, CborCodec())
        )
        async with asyncio.timeout(GUARD):
            async for message in raw.messages:
                assert isinstance(message.payload, bytes)
                parsed = unpack(message.payload)
                assert parsed is not None
                if parsed[0].seq == 1:  # Alice's Auth: now Mallory knows the link
                    header = parsed[0]
                    break
        forged_body = CborCodec().encode(payment(9, signer=ALICE))
        forged = (0).to_bytes(8, "big") + forged_body + bytes(16)
        frame = pack(FrameKind.DATA, header.instance, header.link, 2, forged)
        await raw.publish(topic_to(BOB.address, ALICE.address), frame, qos=1)
        with pytest.raises(AuthenticationFailed, match="altered or forged"):
            await asyncio.wait_for(bob_session.recv(), GUARD)


async def test_endpoints_and_configuration_errors(mosquitto: Broker, bob: MqttTransport) -> None:
    assert bob.endpoint == f"mqtt://{mosquitto.host}:{mosquitto.port}/{BOB.address.checksum}"
    with pytest.raises(TransportError, match="own address"):
        await bob.connect(bob.endpoint)
    with pytest.raises(TransportError, match="another broker"):
        await bob.connect(f"mqtt://{mosquitto.host}:1/{ALICE.address}")
    with pytest.raises(TransportError, match="peer's address"):
        await bob.connect(f"mqtt://{mosquitto.host}:{mosquitto.port}/nobody")
    unreachable = open_transport("mqtt://127.0.0.1:1", own_address=ALICE.address)
    with pytest.raises(TransportError, match="cannot reach MQTT broker"):
        await unreachable.start()
