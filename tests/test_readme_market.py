"""The README's "Tokens and the exchange" section, run as written against one real node
process (shared by this module: `m2mpay token` and `m2mpay dex` talk to a node), and
what those commands say when the node or the contract refuses.

The block's commands run in this process (`CliRunner`), with `M2MPAY_URL` and
`M2MPAY_TOKEN` set as the README says; each is exactly the README's line."""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from m2mpay.bench.daemons import NodeProcess
from tests.cli.conftest import cli
from tests.readme_blocks import blocks_named

ETH = "0x" + "00" * 20
UNIT = 10**18


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("market") / "node"
    data_dir.mkdir()
    running = NodeProcess(data_dir, "--no-mqtt")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _at(node: NodeProcess) -> dict[str, str]:
    return {"M2MPAY_URL": node.ready["url"], "M2MPAY_TOKEN": node.ready["api_token"]}


def _run(node: NodeProcess, *args: str) -> Result:
    return cli(*args, **_at(node))


def _json(node: NodeProcess, *args: str) -> Any:
    result = _run(node, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_the_market_section(node: NodeProcess) -> None:
    (block,) = blocks_named("market")
    said = []
    for line in block.commands:
        program, *args = shlex.split(line, comments=True)
        assert program == ".venv/bin/m2mpay", line
        result = _run(node, *args)
        assert result.exit_code == 0, (line, result.output)
        said.append(" ".join(result.stdout.split()))  # as one line, however Rich wrapped it
    (light,) = _json(node, "token", "list")["tokens"]
    assert (light["name"], light["symbol"], light["supply"]) == ("IoT-Light", "LIGHT", str(10**24))
    assert "IoT-Light" in said[2]
    shares = math.isqrt(UNIT // 2 * 50 * UNIT) - 1_000
    assert f"for {shares} shares" in said[3]
    assert "0.01 ETH buys" in said[4]
    assert "price impact 1.96 %" in said[4]  # 0.01 ETH against 0.5: about 2 %
    assert "sold 0.01 ETH for" in said[5]
    (pool,) = _json(node, "dex", "pools")["pools"]
    assert (pool["token0"], pool["token1"], pool["symbol1"]) == (ETH, light["address"], "LIGHT")
    assert int(pool["shares"]) == shares - 2_500_000_000_000_000_000
    detail = _json(node, "token", "show", "LIGHT")
    moved = 50 * UNIT - int(pool["reserve1"])  # what the pool paid out, net of what came back
    assert int(detail["balance"]) == 10**24 - 50 * UNIT + moved


def test_refusals_are_one_line_with_the_code_and_the_contract_s_reason(
    node: NodeProcess, tmp_path: Path
) -> None:
    _json(node, "wallet", "faucet")
    heat = _json(node, "token", "create", "IoT-Heat", "HEAT", "--supply", "100")
    tiny = _run(node, "dex", "add", "ETH", "HEAT", "1000", "1000")
    assert tiny.exit_code == 1
    assert "Exchange: initial liquidity too small" in tiny.output
    assert "above the 1,000 locked for ever" in tiny.output  # and what to do about it
    for args, said in (
        (("dex", "quote", "ETH", "HEAT", "1000"), "no_pool"),
        (("dex", "quote", "ETH", "HEAT", "1000"), "fix: `m2mpay dex pools` lists the pools"),
        (("dex", "quote", "HEAT", "HEAT", "1"), "same_asset"),
        (("dex", "quote", "ETH", "NOPE", "1"), "no asset 'NOPE'"),
        (("dex", "quote", "ETH", "0x12", "1"), "0x12"),
        (("token", "show", ETH), "not_a_factory_token"),
        (("token", "show", "NOPE"), "no token of the factory's are 'NOPE'"),
    ):
        refused = _run(node, *args)
        assert refused.exit_code == 1, (args, refused.output)
        assert said in refused.output, (args, refused.output)
    _json(node, "dex", "add", "ETH", heat["address"], str(UNIT // 10), str(10 * UNIT))
    greedy = _run(node, "dex", "swap", "ETH", "HEAT", "1000", "--min-out", str(UNIT), "--json")
    assert greedy.exit_code == 1
    error = json.loads(greedy.stderr)["error"]
    assert (error["code"], error["field"]) == ("slippage", "min_out")


def test_a_factory_token_is_named_by_its_symbol_and_read_in_its_decimals(
    node: NodeProcess,
) -> None:
    _json(node, "wallet", "faucet")
    watt = _json(node, "token", "create", "IoT-Watt", "WATT", "--decimals", "6", "--supply", "10")
    receiver = "0x" + "5a" * 20
    sent = _run(node, "wallet", "transfer", receiver, "2500000", "--asset", "WATT")
    assert sent.exit_code == 0, sent.output
    assert "sent 2.5 WATT to" in " ".join(sent.stdout.split())
    detail = _json(node, "token", "show", watt["address"])
    assert int(detail["balance"]) == 10 * 10**6 - 2_500_000
    # A symbol two tokens share names neither: the address is asked for.
    _json(node, "token", "create", "Other-Watt", "WATT", "--supply", "1")
    twice = _run(node, "wallet", "transfer", receiver, "1", "--asset", "WATT")
    assert twice.exit_code == 1
    assert "2 tokens are 'WATT': give the address" in twice.output
