"""`m2mpay demo` as `make demo` runs it: every scenario in node processes of their own,
each checking its own outcome; the JSON report says what happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from m2mpay.client import FlowView, SessionView
from m2mpay.crypto import Address
from m2mpay.scenarios.base import Play
from m2mpay.scenarios.report import Check, PartyBalance, ScenarioReport
from m2mpay.scenarios.runner import SCENARIOS
from m2mpay.scenarios.stage import Stage
from tests.scenarios.demo_kit import run_demo


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_scenario_passes_end_to_end_and_reports_its_books(tmp_path: Path) -> None:
    report, progress = run_demo("--work-dir", str(tmp_path))
    assert report["ledger"].startswith("embedded py-evm")
    assert progress.count("PASS") >= len(SCENARIOS)


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


def test_the_progress_bar_keeps_counting_once_a_session_is_reversed() -> None:
    shown: list[tuple[int, int, int]] = []
    play = Play(cast(Stage, None), ScenarioReport("x", "x", "Wh"), lambda *bar: shown.append(bar))
    view = SessionView(
        session_id="s",
        offer_id="o",
        channel_id="c",
        peer=Address("0x" + "22" * 20),
        role="buyer",
        phase="running",
        price=3,
        reversed=True,
        unit="Wh",
        window=10,
        asset=Address("0x" + "33" * 20),
        forward=FlowView(units=2400, value=7200, paid=7200),
        backward=FlowView(units=600, value=2400, paid=2000),
        started_ms=1,
        stopped_ms=0,
        stop_reason="",
        countersigned=False,
        receipt=None,
        peer_receipt=None,
    )
    play.show_session(view, 3400)
    # Wh both ways out of the whole story; tokens moved both ways.
    assert shown == [(3000, 3400, 9200)]
