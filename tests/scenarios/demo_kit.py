"""Running `m2mpay demo --json` as `make demo` does, and reading its report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from m2mpay.scenarios.runner import SCENARIOS


def failures(stdout: str) -> str:
    """The failed scenarios' checks and errors from a JSON report ("" if there is none):
    progress output is long, and the tail of it hides which check failed."""
    try:
        report = json.loads(stdout)
    except ValueError:
        return ""
    failed = [
        {
            "name": s["name"],
            "error": s["error"],
            "checks": [c for c in s["checks"] if not c["ok"]],
        }
        for s in report.get("scenarios", [])
        if not s["passed"]
    ]
    return json.dumps(failed, indent=1)


def run_demo(*options: str, scenarios: Sequence[str] = ()) -> tuple[dict[str, Any], str]:
    """Run `m2mpay demo --json` as `make demo` does (only `scenarios` when given); its
    report and its progress output."""
    done = subprocess.run(
        [sys.executable, "-m", "m2mpay", "demo", "--json", *options, *scenarios],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, failures(done.stdout) or done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["passed"] is True
    assert [s["name"] for s in report["scenarios"]] == list(scenarios or SCENARIOS)
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
    return report, done.stderr
