"""The `m2mpay` command: help, deploy, info, contract checks and the gas bench."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from m2mpay.bench import GAS_BUDGET
from m2mpay.chain.token import TOKEN_GAS
from m2mpay.chain.token_factory import TOKEN_FACTORY_GAS
from m2mpay.cli import app
from m2mpay.cli.lazy import LAZY_COMMANDS

runner = CliRunner()


def test_installed_entry_point_prints_help() -> None:
    executable = Path(sys.executable).parent / "m2mpay"
    command = [str(executable)] if executable.exists() else [shutil.which("m2mpay") or "m2mpay"]
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    for group in ("ledger", "bench", "contracts", "node", "demo", "watcher", "channel"):
        assert group in result.stdout


def test_every_lazy_command_loads_and_helps() -> None:
    for name in LAZY_COMMANDS:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert f"m2mpay {name}" in result.stdout


def test_the_api_clients_commands_do_not_load_the_chain() -> None:
    # py-evm and web3 take over a second to import; `m2mpay channel pay` needs neither.
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from m2mpay.cli import app\n"
        "CliRunner().invoke(app, ['channel', 'pay', '--help'])\n"
        "print(sorted(m for m in ('eth', 'web3', 'm2mpay.chain') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_ledger_deploy_records_and_info_verifies(tmp_path: Path) -> None:
    deployed = runner.invoke(app, ["ledger", "deploy", "--data-dir", str(tmp_path), "--json"])
    assert deployed.exit_code == 0, deployed.output
    record = json.loads(deployed.stdout)
    assert record["chainId"] == 1337
    assert record["hub"].startswith("0x")
    assert record["token"].startswith("0x")
    saved = json.loads((tmp_path / "deployments.json").read_text())
    assert saved["eip155:1337"]["hub"] == record["hub"]

    info = runner.invoke(app, ["ledger", "info", "--data-dir", str(tmp_path), "--json"])
    assert info.exit_code == 0, info.output
    shown = json.loads(info.stdout)
    assert shown["deployment"]["hub"] == record["hub"]
    assert shown["block"] >= record["blockNumber"]


def test_ledger_deploy_prints_a_table_for_people(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ledger", "deploy", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "ChannelHub" in result.stdout
    assert "minted" in result.stdout


def test_info_without_deployment_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ledger", "info", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["deployment"] is None
    assert "m2mpay ledger deploy" in shown["note"]


def test_unreachable_rpc_url_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["ledger", "info", "--data-dir", str(tmp_path), "--rpc-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "127.0.0.1:9" in result.output


def test_bad_signing_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M2MPAY_PRIVATE_KEY", "0x1234")
    result = runner.invoke(app, ["ledger", "deploy", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "M2MPAY_PRIVATE_KEY" in result.output


def test_contracts_check_passes_on_committed_artifacts() -> None:
    result = runner.invoke(app, ["contracts", "check"])
    assert result.exit_code == 0, result.output
    assert "match their sources" in result.stdout


def test_bench_gas_json_reports_every_step_within_budget() -> None:
    result = runner.invoke(app, ["bench", "gas", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    steps = (
        "open_with_deposit",
        "top_up",
        "cooperative_close",
        "unilateral_close",
        "challenge",
        "settle",
        "lifecycle_cooperative",
        "lifecycle_dispute",
    )
    for step in steps:
        assert isinstance(report[step], int)
        assert report[step] > 21_000
    parts = ("open_with_deposit", "unilateral_close", "challenge", "settle")
    assert abs(report["lifecycle_dispute"] - sum(report[p] for p in parts)) < 200
    # Gas is deterministic, so the budget is a regression guard, not a timing assert.
    assert report["lifecycle_cooperative"] <= GAS_BUDGET["lifecycle_cooperative"]
    assert report["lifecycle_dispute"] <= GAS_BUDGET["lifecycle_dispute"]
    assert report["first_use"]["lifecycle_cooperative"] <= GAS_BUDGET["lifecycle_cooperative"]
    assert report["swap"] <= GAS_BUDGET["swap"]
    assert report["add_liquidity"] > report["swap"] > 21_000
    assert report["remove_liquidity"] > 21_000
    assert report["meets_budget"] is True
    # Mostly the new token's code (200 gas a byte), yet a token all the same.
    assert 500_000 < report["token_create"] <= TOKEN_FACTORY_GAS["create"]
    # A transfer by EIP-3009 authorization: a transfer, a signature check, a nonce stored.
    assert 45_000 < report["transfer_with_authorization"] <= TOKEN_GAS["transferWithAuthorization"]
    # The metered escrow's lifecycle is its deposit (with permit) and the claim.
    assert report["escrow_lifecycle"] == report["escrow_deposit"] + report["escrow_claim"]
    assert report["escrow_deposit"] > 21_000
    assert report["escrow_claim"] > 21_000
    assert report["native_eth"]["escrow_lifecycle"] > 42_000


def test_bench_gas_on_anvil_matches_embedded_within_calldata_noise() -> None:
    embedded = json.loads(runner.invoke(app, ["bench", "gas", "--json"]).stdout)
    anvil = runner.invoke(app, ["bench", "gas", "--json", "--anvil"])
    assert anvil.exit_code == 0, anvil.output
    on_anvil = json.loads(anvil.stdout)
    assert on_anvil["chain"] == "eip155:31337"
    for step in ("lifecycle_cooperative", "lifecycle_dispute"):
        # Signatures and deadlines differ per run; zero bytes in calldata cost less.
        assert abs(on_anvil[step] - embedded[step]) < 200


def test_bench_api_counts_only_payments_the_payee_holds() -> None:
    result = runner.invoke(
        app, ["bench", "api", "--payments", "300", "--concurrency", "3", "--no-wait", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # 100 warm-up payments per client precede the measured ones, 1 unit each.
    assert report["sent_total"] == report["received_total"] == str(300 + 3 * 100)
    assert report["payments_per_s"] > 0
    assert 0 < report["p50_ms"] <= report["p99_ms"]
