"""A node's MQTT inbox against strangers: anyone who reaches the broker can publish link
opens under any sender address they like. Forged senders by the hundred, link opens by the
thousand, stalled handshakes and garbage: every stranger's link is closed within the
handshake timeout, the node forgets them (no link, no peer record, no broker subscription
left behind), a flood past the transport's bound is refused rather than held, and an honest
peer opens a channel and pays all the while."""

from __future__ import annotations

import asyncio
import secrets

import aiomqtt

from m2mpay.crypto import Address, PrivateKey
from m2mpay.node import NodeConfig
from m2mpay.wire import MqttTransport
from m2mpay.wire.handshake import Hello
from m2mpay.wire.mqtt_frames import FrameKind, pack, topic_to, unpack
from tests.conftest import Broker
from tests.node.conftest import UNIT, Chain, NodeFactory

HANDSHAKE_S = 1.0
FORGED_SENDERS = 200
OPENS_EACH = 3


async def _flood(
    stranger: aiomqtt.Client, victim: Address, senders: list[Address]
) -> set[tuple[Address, bytes]]:
    """Publishes link opens (some followed by a Hello that never gets its Auth, some by
    garbage) from each forged sender; returns the (sender, link) pairs opened."""
    opened: set[tuple[Address, bytes]] = set()
    for index, sender in enumerate(senders):
        instance = secrets.token_bytes(8)
        for _ in range(OPENS_EACH):
            link = secrets.token_bytes(8)
            opened.add((sender, link))
            topic = topic_to(victim, sender)
            await stranger.publish(topic, pack(FrameKind.OPEN, instance, link, 0), qos=1)
            if index % 3 == 1:
                hello = Hello.create(PrivateKey.generate(), "cbor").encode()
                await stranger.publish(topic, pack(FrameKind.DATA, instance, link, 0, hello), qos=1)
            elif index % 3 == 2:
                junk = pack(FrameKind.DATA, instance, link, 0, b"\x00" * 50_000)
                await stranger.publish(topic, junk, qos=1)
                await stranger.publish(topic, b"\xff" * 64, qos=1)  # not even a frame
    return opened


async def _closes_until(
    stranger: aiomqtt.Client, victim: Address, wanted: set[tuple[Address, bytes]], within: float
) -> set[tuple[Address, bytes]]:
    """The (sender, link) pairs the victim answered with CLOSE before `within` seconds."""
    closed: set[tuple[Address, bytes]] = set()
    victim_hex = "0x" + victim.hex()
    try:
        async with asyncio.timeout(within):
            async for message in stranger.messages:
                assert isinstance(message.payload, bytes)
                parsed = unpack(message.payload)
                sender_hex = message.topic.value.split("/")[2]
                assert message.topic.value.endswith("/in/" + victim_hex)
                if parsed is not None and parsed[0].kind is FrameKind.CLOSE:
                    closed.add((Address(sender_hex), parsed[0].link))
                    if wanted <= closed:
                        break
    except TimeoutError:
        pass
    return closed


async def test_forged_senders_are_closed_and_forgotten_while_a_peer_pays(
    chain: Chain, make_node: NodeFactory, mosquitto: Broker
) -> None:
    inbox = MqttTransport(mosquitto.host, mosquitto.port, chain.keys[2].address)
    victim = await make_node(
        2,
        transport=inbox,
        config=NodeConfig(tick_interval_s=0.05, handshake_timeout_s=HANDSHAKE_S),
    )
    senders = [PrivateKey.generate().address for _ in range(FORGED_SENDERS)]
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as stranger:
        await stranger.subscribe(f"m2mpay/v1/+/in/0x{victim.address.hex()}", qos=1)
        opened = await _flood(stranger, victim.address, senders)
        honest = await make_node(
            1, transport=MqttTransport(mosquitto.host, mosquitto.port, chain.keys[1].address)
        )
        channel = await honest.open_channel(
            victim.address, chain.token.address, UNIT, endpoint=victim.endpoint
        )
        await honest.pay(channel.channel_id, 7)
        assert victim.channel(channel.channel_id).received_total == 7

        closed = await _closes_until(stranger, victim.address, opened, HANDSHAKE_S + 10)
        assert opened <= closed, f"{len(opened - closed)} of {len(opened)} links never closed"

    await honest.pay(channel.channel_id, 5)
    assert victim.channel(channel.channel_id).received_total == 12
    assert victim.is_connected(honest.address)
    assert inbox.incoming_links == 1  # the honest peer's
    remembered = inbox.known_peers
    assert remembered == {honest.address}, f"still holds {len(remembered) - 1} strangers"
