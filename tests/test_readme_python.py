"""The README's Python examples, run as written: each ```` ```python NAME ```` block
runs as one program (top-level `await` included) given only the names its prose says
it has (a ledger with the contracts, keys, started nodes, a watcher's URL), then the
test checks that it did what the prose says."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from m2mpay.chain import EmbeddedLedger, TokenContract
from m2mpay.store import open_store
from m2mpay.watcher import Watcher, WatcherServer
from m2mpay.watcher_client import WatcherClient
from tests.node.conftest import UNIT, Chain, NodeFactory, chain, make_node  # noqa: F401
from tests.readme_blocks import blocks_named, free_port, run_python

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The examples' stores are relative paths, made in the test's directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
async def watcher_url(chain: Chain, tmp_path: Path) -> AsyncIterator[str]:  # noqa: F811
    """A watcher serving on loopback, as `m2mpay watcher serve` would, on the same chain."""
    watcher = Watcher(
        chain.ledger,
        chain.hub.address,
        open_store(tmp_path / "watcher.sqlite3"),
        chain.ledger.dev_accounts()[-1],
    )
    await watcher.start()
    port = free_port()
    server = WatcherServer(watcher, port=port)
    await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop()
        await watcher.stop()


async def _stop(namespace: dict[str, Any], *names: str) -> None:
    """Stop what an example started, last started first."""
    for name in names:
        if name in namespace:
            await namespace[name].stop()


@pytest.mark.usefixtures("in_tmp")
async def test_a_charger_sells_a_car_energy_to_its_target_countersigned(
    chain: Chain,  # noqa: F811
    make_node: NodeFactory,  # noqa: F811
) -> None:
    (block,) = blocks_named("sessions")
    given: dict[str, Any] = {
        "charger_node": await make_node(1),
        "car_node": await make_node(2),
        "token": chain.token,
    }
    try:
        await run_python(block, given)
        stopped = given["stopped"]
        assert stopped.stop_reason == "target reached"
        assert stopped.forward.units == 3_600  # the example's target_units
        assert stopped.forward.value == stopped.forward.paid == 3_600 * 10**14
        assert stopped.receipt is not None
        assert stopped.peer_receipt is not None
        # One statement, signed by each side.
        ours, theirs = stopped.receipt, stopped.peer_receipt
        assert dataclasses.replace(ours, signature=theirs.signature) == theirs
        assert ours.signature != theirs.signature
    finally:
        await _stop(given, "car", "charger")
        if "sim" in given:
            await given["sim"].close()


@pytest.mark.usefixtures("in_tmp")
async def test_a_channel_then_a_watcher_and_a_device_through_its_host(
    chain: Chain,  # noqa: F811
    watcher_url: str,
) -> None:
    channel, device = blocks_named("channel", "watcher-and-device")
    keys = chain.keys
    given: dict[str, Any] = {
        "ledger": chain.ledger,
        "hub": chain.hub,
        "token": chain.token,
        "alice_key": keys[1],
        "bob_key": keys[2],
        "host_key": keys[3],
        "device_key": keys[4],
        "watcher_url": watcher_url,
    }
    try:
        await run_python(channel, given)
        alice, bob = given["alice"], given["bob"]
        opened = given["channel"].channel_id
        paid = 10**15 + 1  # the example's two payments
        await bob.wait_closed(opened)
        assert (await alice.wait_closed(opened)).final_balance_mine == UNIT - paid
        assert bob.channel(opened).received_total == paid

        await run_python(device, given)
        # The device's feed reaches the watcher through the host: a channel bob opens
        # to the device, and bob's payment on it, reach the watcher as the device's.
        node = given["device"]
        to_device = await bob.open_channel(
            node.address, chain.token.address, UNIT, endpoint=node.endpoint
        )
        await bob.pay(to_device.channel_id, 7)
        async with asyncio.timeout(30):
            await given["feed"].wait_synced()
        async with WatcherClient(watcher_url) as reader:
            view = await reader.channel(to_device.channel_id)
        (held,) = [p for p in view["parties"] if p["party"] == node.address.checksum]
        assert held["held_transferred"] == "7"
    finally:
        await _stop(given, "feed", "device", "host", "bob", "alice")
        if "tower" in given:
            await given["tower"].close()


async def test_the_contracts_directly_on_a_chain_kept_in_its_data_dir(tmp_path: Path) -> None:
    (block,) = blocks_named("contracts")
    given: dict[str, Any] = {"data_dir": tmp_path / "chain"}
    await run_python(block, given)
    hub, token, alice, bob = given["hub"], given["token"], given["alice"], given["bob"]
    assert len(given["proof"]) == 65  # r, s, v
    # The chain outlives the example's ledger: opened again, the deposit is in the hub.
    async with EmbeddedLedger(tmp_path / "chain") as again:
        kept = TokenContract(again, token.address)
        assert await kept.balance_of(hub.address) == UNIT
        assert await kept.balance_of(alice.address) == 10**21 - UNIT
        assert await kept.balance_of(bob.address) == 0
