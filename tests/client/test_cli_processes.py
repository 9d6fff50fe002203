"""The `m2mpay` API commands against two running `m2mpay node` processes that share one
embedded chain: a channel opened by URL, paid, listed and closed, balances on chain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from m2mpay.cli import app

UNIT = 10**18
runner = CliRunner()


@dataclass(frozen=True)
class RunningNode:
    url: str
    token: str
    address: str
    peer_endpoint: str
    process: subprocess.Popen[str]

    def cli(self, *args: str, token: str | None = None) -> Result:
        """`m2mpay <args>` against this node, its URL and token given in the environment."""
        env = {"M2MPAY_URL": self.url, "M2MPAY_TOKEN": token or self.token}
        return runner.invoke(app, list(args), env=env)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


def _m2mpay() -> list[str]:
    executable = Path(sys.executable).parent / "m2mpay"
    return [str(executable)] if executable.exists() else [shutil.which("m2mpay") or "m2mpay"]


def _start(name: str, tmp_path: Path) -> RunningNode:
    with (tmp_path / f"{name}.log").open("w") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [
                *_m2mpay(),
                "node",
                "--json",
                "--data-dir",
                str(tmp_path / name),
                "--chain-dir",
                str(tmp_path / "chain"),
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "M2MPAY_PASSPHRASE": f"passphrase of {name}"},
        )
    assert process.stdout is not None
    line = process.stdout.readline()  # the ready line; empty if the node exited
    if not line:
        process.wait()
        raise AssertionError(f"{name} exited: {(tmp_path / f'{name}.log').read_text()}")
    ready = json.loads(line)
    return RunningNode(
        ready["url"], ready["api_token"], ready["address"], ready["peer_endpoint"], process
    )


def _stop(node: RunningNode) -> None:
    node.process.terminate()
    try:
        node.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        node.process.kill()
        node.process.wait()
    if node.process.stdout is not None:
        node.process.stdout.close()


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[RunningNode, RunningNode]]:
    """Alice's node hosts the embedded chain in `chain/`; Bob's reaches it through her."""
    alice = _start("alice", tmp_path)
    try:
        bob = _start("bob", tmp_path)
        try:
            yield alice, bob
        finally:
            _stop(bob)
    finally:
        _stop(alice)


def _balance(wallet: dict[str, Any], symbol: str) -> int:
    (found,) = [b for b in wallet["balances"] if b["symbol"] == symbol]
    return int(found["on_chain"])


def test_open_pay_list_and_close_between_two_node_processes(
    two_nodes: tuple[RunningNode, RunningNode],
) -> None:
    alice, bob = two_nodes
    funded = alice.json("wallet", "faucet")
    assert funded["address"] == alice.address
    alice_start = _balance(funded, "M2M")
    assert alice_start == 1_000 * UNIT
    assert _balance(funded, "ETH") > 0
    assert _balance(bob.json("wallet", "show"), "M2M") == 0

    # Bob's node named by its URL: his address and wire endpoint come from its /v1/info.
    opened = alice.json("channel", "open", bob.url, "--deposit", str(10 * UNIT))
    assert (opened["peer"], opened["phase"], opened["deposit_mine"]) == (
        bob.address,
        "open",
        str(10 * UNIT),
    )
    channel = opened["channel_id"]

    paid = alice.json("channel", "pay", channel[:10], str(UNIT // 10), "--count", "5")
    assert paid == {
        "channel_id": channel,
        "payments": 5,
        "amount": str(UNIT // 2),
        "sent_total": str(UNIT // 2),
        "seq": paid["seq"],
        "acknowledged": 5,
    }
    (mine,) = alice.json("channel", "list")["channels"]
    assert (mine["balance_mine"], mine["sent_total"]) == (str(19 * UNIT // 2), str(UNIT // 2))
    (theirs,) = bob.json("channel", "list")["channels"]
    assert (theirs["channel_id"], theirs["received_total"]) == (channel, str(UNIT // 2))
    shown = alice.cli("channel", "list")
    assert shown.exit_code == 0, shown.output
    assert channel[:10] in shown.stdout
    # People read amounts in whole tokens with the symbol; --json above kept the integers.
    assert "9.5 M2M" in shown.stdout
    assert "0.5 M2M" in shown.stdout
    one = alice.cli("channel", "show", channel[:10])
    assert one.exit_code == 0, one.output
    assert "10 M2M / 0 M2M" in one.stdout  # deposits
    assert "9.5 M2M / 0.5 M2M" in one.stdout  # balances
    wallet = alice.cli("wallet", "show")
    assert wallet.exit_code == 0, wallet.output
    assert "990 M2M" in wallet.stdout
    assert "9.5 M2M" in wallet.stdout  # in the channel
    assert str(990 * UNIT) not in wallet.stdout

    closed = alice.json("channel", "close", channel)
    assert (closed["phase"], closed["final_balance_mine"]) == ("closed", str(19 * UNIT // 2))
    assert _balance(alice.json("wallet", "show"), "M2M") == alice_start - UNIT // 2
    assert _balance(bob.json("wallet", "show"), "M2M") == UNIT // 2

    # Refusals: the API's code and message on stderr, exit code 1.
    again = alice.cli("channel", "pay", channel, "1")
    assert again.exit_code == 1
    assert "error:" in again.stderr
    refused = alice.cli("wallet", "show", "--json", token="m2m_not_the_token")
    assert refused.exit_code == 1
    assert json.loads(refused.stderr)["error"]["code"] == "unauthorized"
