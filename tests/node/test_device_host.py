"""Device/host split: a device with keys only, a host that reads the chain and pays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from m2mpay.channel.messages import ChannelTerms
from m2mpay.channel.outputs import CloseTx, DepositTx, OpenTx
from m2mpay.channel.state import Phase
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import ChannelError
from m2mpay.node import Node, NodeConfig
from m2mpay.node.host import DeviceHost, HostAccess, HostExecute, HostResult, default_policy
from m2mpay.store import open_store
from m2mpay.wire import JsonCodec, WebSocketTransport, open_peer_link
from tests.node.conftest import Chain, NodeFactory


@pytest.fixture
async def host(chain: Chain) -> AsyncIterator[DeviceHost]:
    """A host speaking JSON, paying from dev account 3."""
    await chain.token.mint(chain.keys[0], chain.keys[3].address, 10**21)
    host = DeviceHost(
        chain.keys[3], chain.ledger, chain.hub.address, WebSocketTransport(), codec="json"
    )
    await host.start()
    yield host
    await host.stop()


async def _device(host: DeviceHost, tmp_path: Path, key: PrivateKey) -> Node:
    """A device speaking CBOR, with no ledger connection at all."""
    device = Node(
        key,
        HostAccess(key, WebSocketTransport(), host.endpoint, host=host.key.address, codec="cbor"),
        open_store(tmp_path / f"device-{key.address.hex()[:8]}.sqlite3"),
        transport=WebSocketTransport(),
        config=NodeConfig(tick_interval_s=0.05, codec="cbor"),
    )
    await device.start()
    return device


async def test_a_device_opens_pays_gets_paid_and_closes_through_its_host(
    chain: Chain, make_node: NodeFactory, host: DeviceHost, tmp_path: Path
) -> None:
    charger = await make_node(2)
    device_key = PrivateKey.generate()  # no ether, no tokens: it never sends a transaction
    device = await _device(host, tmp_path, device_key)
    try:
        info = await device.open_channel(
            charger.address, chain.token.address, 100, peer_deposit=50, endpoint=charger.endpoint
        )
        assert (info.phase, info.deposit_mine, info.deposit_peer) == (Phase.OPEN, 100, 50)
        await device.pay(info.channel_id, 30)
        await charger.pay(info.channel_id, 40)
        assert device.channel(info.channel_id).balance_mine == 110
        closed = await device.close(info.channel_id)
        assert closed.phase is Phase.CLOSED
        await charger.wait_closed(info.channel_id)
    finally:
        await device.stop()
    assert await chain.token.balance_of(device_key.address) == 110
    assert await chain.ledger.balance(device_key.address) == 0


async def test_host_policy_refuses_what_is_not_the_devices_business() -> None:
    device, other, peer = (PrivateKey.generate().address for _ in range(3))
    hub = Address("0x" + "11" * 20)
    mine = ChannelTerms(1, hub, device, peer, hub, 60, 1, 10, 0)
    theirs = ChannelTerms(1, hub, other, peer, hub, 60, 1, 10, 0)
    assert default_policy(device, OpenTx(mine)) is None
    assert default_policy(device, OpenTx(theirs)) == "the device is not a party of this channel"
    as_b = ChannelTerms(1, hub, peer, device, hub, 60, 1, 10, 0)
    assert default_policy(device, OpenTx(as_b)) == "a device may only open channels it proposed"
    assert default_policy(device, DepositTx(as_b, 10, 0, device, 5)) is None
    assert (
        default_policy(device, DepositTx(as_b, 10, 0, peer, 5))
        == "a device may only fund its own deposit"
    )
    assert default_policy(device, CloseTx(mine, 10, 0, 0, 0, None)) == (
        "a unilateral close must be sent by the device itself"
    )


async def test_a_device_asking_for_someone_elses_funding_is_refused(
    chain: Chain, host: DeviceHost
) -> None:
    rogue = PrivateKey.generate()
    transport = WebSocketTransport()
    await transport.start()
    try:
        link = await transport.connect(host.endpoint)
        session = await open_peer_link(link, rogue, JsonCodec(), expected_peer=host.key.address)
        terms = ChannelTerms(
            chain.ledger.chain_id, chain.hub.address, chain.keys[1].address,
            chain.keys[2].address, chain.token.address, 60, 7, 10**18, 0,
        )  # fmt: skip
        await session.send(HostExecute(1, OpenTx(terms)))  # type: ignore[arg-type]
        while True:
            reply = await asyncio.wait_for(session.recv(), 5)
            if isinstance(reply, HostResult):
                break
        assert reply.ok is False
        assert reply.reason == "the device is not a party of this channel"
        await session.close()
    finally:
        await transport.stop()
    assert await chain.token.balance_of(chain.hub.address) == 0


async def test_a_device_cannot_be_closed_unilaterally_by_its_host(
    chain: Chain, make_node: NodeFactory, host: DeviceHost, tmp_path: Path
) -> None:
    charger = await make_node(2)
    device = await _device(host, tmp_path, PrivateKey.generate())
    try:
        info = await device.open_channel(
            charger.address, chain.token.address, 100, endpoint=charger.endpoint
        )
        with pytest.raises(ChannelError, match="must be sent by the device itself"):
            await device.force_close(info.channel_id, timeout=10)
        # The refusal reached the machine as a failed transaction; the channel is still open.
        assert device.channel(info.channel_id).phase is Phase.OPEN
    finally:
        await device.stop()
