"""A device's cooperative close asked while its link to the host is down (found by
`m2mpay torture crash`, phase device.host, seed 9): the close must go through once
the host is back, not fall back to a unilateral close the host refuses to send for
a device, which left the channel to its peer's unilateral close and a whole
challenge period."""

from __future__ import annotations

import asyncio
from pathlib import Path

from m2mpay.channel.state import Phase
from m2mpay.crypto import PrivateKey
from m2mpay.node import Node, NodeConfig
from m2mpay.node.host import HostAccess
from m2mpay.store import open_store
from m2mpay.wire import WebSocketTransport
from tests.node.conftest import Chain, NodeFactory
from tests.node.test_host_access_reconnect import QUICK, StartHost, _port, start_host  # noqa: F401
from tests.waiting import eventually


async def test_a_close_asked_while_the_host_is_away_is_cooperative_once_it_is_back(
    chain: Chain,
    make_node: NodeFactory,
    start_host: StartHost,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    first = await start_host()
    charger = await make_node(2)
    device_key = PrivateKey.generate()
    link = HostAccess(
        device_key, WebSocketTransport(), first.endpoint, host=first.key.address,
        reconnect_backoff=QUICK,
    )  # fmt: skip
    device = Node(
        device_key,
        link,
        open_store(tmp_path / "device.sqlite3"),
        transport=WebSocketTransport(),
        config=NodeConfig(tick_interval_s=0.05, codec="cbor"),
    )
    await device.start()
    try:
        info = await device.open_channel(
            charger.address, chain.token.address, 100, endpoint=charger.endpoint
        )
        await device.pay(info.channel_id, 30)
        await first.stop()
        await eventually(lambda: not link.connected)
        closing = asyncio.ensure_future(device.close(info.channel_id, timeout=20))
        await asyncio.sleep(0.3)  # the close is asked, and its transaction has no way out
        await start_host(_port(first.endpoint))
        closed = await closing
        assert closed.phase is Phase.CLOSED  # cooperatively: no dispute, no waiting
        assert closed.final_balance_mine == 70
    finally:
        await device.stop()
