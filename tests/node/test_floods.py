"""A node's peer port against strangers that connect and never finish the handshake, or
send garbage: each is dropped within the handshake timeout, and an honest peer opens a
channel and pays all the while."""

from __future__ import annotations

import asyncio
import contextlib

import websockets

from m2mpay.crypto import PrivateKey
from m2mpay.node import NodeConfig
from m2mpay.wire.handshake import Hello
from tests.node.conftest import UNIT, Chain, NodeFactory

HANDSHAKE_S = 1.0


async def _dropped(connection: websockets.ClientConnection, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            await connection.wait_closed()
    except TimeoutError:
        return False
    return True


async def test_silent_and_stalling_strangers_are_dropped_while_peers_are_served(
    chain: Chain, make_node: NodeFactory
) -> None:
    victim = await make_node(2, config=NodeConfig(tick_interval_s=0.05, handshake_timeout_s=1.0))
    endpoint = str(victim.endpoint)
    silent = [await websockets.connect(endpoint) for _ in range(60)]
    stalling = [await websockets.connect(endpoint) for _ in range(30)]
    for connection in stalling:  # a valid Hello, then nothing: the Auth never comes
        await connection.send(Hello.create(PrivateKey.generate(), "cbor").encode())
    garbage = [await websockets.connect(endpoint) for _ in range(30)]
    for connection in garbage:
        with contextlib.suppress(websockets.ConnectionClosed):
            await connection.send(b"\x00" * 100_000)

    honest = await make_node(1)
    opened = await honest.open_channel(
        victim.address, chain.token.address, UNIT, endpoint=victim.endpoint
    )
    await honest.pay(opened.channel_id, 7)
    assert victim.channel(opened.channel_id).received_total == 7

    strangers = silent + stalling + garbage
    dropped = await asyncio.gather(*(_dropped(c, HANDSHAKE_S + 5) for c in strangers))
    assert all(dropped), f"{dropped.count(False)} of {len(strangers)} still connected"
    assert victim.is_connected(honest.address)
