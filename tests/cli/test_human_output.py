"""What `offer publish`, `device list`, `device telemetry`, `wallet transfer` and
`ledger info` print for people, against a real node process with a lamp on its bus
(and a chain in a data dir): amounts in the node's token (or the chain's coin) with
the symbol, exact, and times as local times; never the smallest unit's integers or
the epoch times `--json` gives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import Result

from m2mpay.bench.daemons import NodeProcess
from m2mpay.cli.common import console
from m2mpay.cli.units import local_time
from m2mpay.client import NodeClient
from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices.lamp import Lamp
from tests.cli.conftest import cli, running_node  # noqa: F401 (a fixture)
from tests.waiting import eventually_async

PRICE = 10**14  # the lamp's, per second: 0.0001 M2M/s
UNIT = 10**18


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # At 80 columns Rich folds a table's long cells; the checks read whole values.
    monkeypatch.setattr(console, "width", 200)


async def _people(node: NodeProcess, *args: str) -> str:
    """`m2mpay <args>` without `--json`, as people read it; it runs its own loop."""
    env = {"M2MPAY_URL": node.url, "M2MPAY_TOKEN": node.ready["api_token"]}
    done: Result = await asyncio.to_thread(cli, *args, **env)
    assert done.exit_code == 0, done.output
    return done.stdout


@pytest.fixture
async def lamp(running_node: NodeProcess) -> AsyncIterator[Lamp]:  # noqa: F811
    """A lamp on the node's bus that has sent two telemetry records."""
    made = Lamp(
        running_node.url.replace("http://", "ws://") + "/v1/devices/ws",
        PrivateKey.generate(),
        price=PRICE,
        asset=Address(running_node.ready["token_contract"]),
        server=Address(running_node.ready["address"]),
    )
    async with made, NodeClient(running_node.url, running_node.ready["api_token"]) as node:
        await made.connected.wait()
        await made.record({"lit_s": 3})
        await made.record({"lit_s": 5})

        async def stored() -> bool:
            return len(await node.telemetry(made.address.checksum)) == 2

        await eventually_async(stored)
        yield made


async def test_device_list_offer_publish_and_telemetry_say_tokens_and_local_times(
    running_node: NodeProcess,  # noqa: F811
    lamp: Lamp,
) -> None:
    prefix = lamp.address.checksum[:10]
    listed = await _people(running_node, "device", "list")
    assert "light (0.0001 M2M/s)" in listed
    assert str(PRICE) not in listed

    published = await _people(running_node, "offer", "publish", "--device", prefix,
                              "--window", "5")  # fmt: skip
    async with NodeClient(running_node.url) as storefront:
        (offer,) = [o for o in await storefront.offers() if o.unit == "s"]
    assert offer.offer_id in published
    assert "0.0001 M2M/s" in published
    assert local_time(offer.valid_until_ms) in published
    assert str(PRICE) not in published
    assert str(offer.valid_until_ms) not in published

    async with NodeClient(running_node.url, running_node.ready["api_token"]) as node:
        records = await node.telemetry(lamp.address.checksum)
    shown = await _people(running_node, "device", "telemetry", prefix)
    for record in records:
        assert local_time(record.at_ms) in shown
        assert str(record.at_ms) not in shown
    assert '{"lit_s": 3}' in shown


async def test_wallet_transfer_says_the_amount_in_the_token_or_the_coin(
    running_node: NodeProcess,  # noqa: F811
) -> None:
    to = PrivateKey.generate().address.checksum
    await _people(running_node, "wallet", "faucet")
    tokens = await _people(running_node, "wallet", "transfer", to, str(3 * UNIT // 2),
                           "--asset", "M2M")  # fmt: skip
    assert f"sent 1.5 M2M to {to}" in tokens
    assert str(3 * UNIT // 2) not in tokens
    coin = await _people(running_node, "wallet", "transfer", to, "1")
    assert f"sent 0.000000000000000001 ETH to {to}" in coin


def test_ledger_info_says_the_chains_time_as_a_local_time(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "chain")
    assert cli("ledger", "deploy", "--data-dir", data_dir).exit_code == 0
    as_json = cli("ledger", "info", "--data-dir", data_dir, "--json")
    assert as_json.exit_code == 0, as_json.output
    timestamp = json.loads(as_json.stdout)["timestamp"]  # epoch seconds, for programs
    shown = cli("ledger", "info", "--data-dir", data_dir)
    assert shown.exit_code == 0, shown.output
    assert local_time(timestamp * 1000) in shown.stdout
    assert str(timestamp) not in shown.stdout
