"""`m2mpay demo` as `make demo` runs it: every scenario in node processes of their own,
each checking its own outcome; the JSON report says what happened."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from m2mpay.crypto import Address
from m2mpay.scenarios.report import Check, PartyBalance, ScenarioReport
from m2mpay.scenarios.runner import SCENARIOS


def test_every_scenario_passes_end_to_end_and_reports_its_books(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "m2mpay", "demo", "--json", "--work-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["passed"] is True
    assert [s["name"] for s in report["scenarios"]] == list(SCENARIOS)
    for scenario in report["scenarios"]:
        name = scenario["name"]
        assert scenario["passed"], (name, scenario["checks"], scenario["error"])
        assert scenario["checks"], name
        assert all(c["ok"] for c in scenario["checks"]), name
        assert scenario["units"] > 0, name
        assert int(scenario["paid"]) > 0, name
        assert scenario["onchain_txs"] > 0, name
        assert scenario["gas"] > 0, name
        assert scenario["balances"], name
        assert "PASS" in done.stderr


def test_an_unknown_scenario_is_refused_with_the_list() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "m2mpay", "demo", "moon-landing"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "ev-charging" in done.stderr


def test_a_scenario_passes_only_with_checks_all_ok_and_no_error() -> None:
    report = ScenarioReport("x", "x", "Wh")
    assert not report.passed  # nothing checked is not a pass
    report.checks.append(Check("units", True, ""))
    assert report.passed
    report.checks.append(Check("balance", False, "1 (expected 2)"))
    assert not report.passed
    report.checks.pop()
    report.error = "TimeoutError: waited 60 s for the close"
    assert not report.passed
    party = PartyBalance("car", Address("0x" + "11" * 20), before=10, after=7)
    assert party.change == -3
