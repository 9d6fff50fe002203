"""`m2mpay bench provenance --json` runs small and reports what the issue names, the web
reader verifying 10,000 messages in Chromium among them; where Chromium is absent the
bench still runs and says why that one measure is null."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from m2mpay.bench.browser_verify import CHROMIUM
from m2mpay.bench.provenance import measure_provenance
from m2mpay.cli import app

runner = CliRunner()


def test_bench_provenance_json_reports_writes_verifies_overhead_anchor_gas_and_browser() -> None:
    assert CHROMIUM.is_file()  # `make test` installs Debian's Chromium: in CI, never absent
    result = runner.invoke(
        app,
        [
            *("bench", "provenance", "--streams", "4", "--messages", "200"),
            *("--browser-messages", "300", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["streams"], report["messages"]) == (4, 200)
    for field in ("writes_per_s", "verify_per_s", "write_commits"):
        assert isinstance(report[field], int)
        assert report[field] > 0
    # Framing (114), signature (65), nonce and tag (28): what a record costs beyond itself.
    assert report["overhead_bytes_per_record"] == 114 + 65 + 28
    assert report["write_commits"] <= 200
    # Measured from the anchor transaction's receipt, a batch of 256 heads.
    assert report["anchor_batch"] == 256
    assert isinstance(report["anchor_gas"], int)
    assert report["anchor_gas"] > 21_000
    assert isinstance(report["anchor_gas_per_message"], float)
    assert 0 < report["anchor_gas_per_message"] == round(report["anchor_gas"] / 256, 1)
    assert report["browser_messages"] == 300
    assert isinstance(report["browser_verify_ms"], float)
    assert report["browser_verify_ms"] > 0
    assert report["browser_verify_10k_ms"] is None  # the measure is at 10,000 only
    assert "anchor_gas_per_message" in report["notes"]
    assert "browser_verify_ms: the web reader" in report["notes"]
    assert "is null" not in report["notes"]


async def test_without_chromium_the_bench_runs_and_says_why_the_browser_measure_is_null(
    tmp_path: Path,
) -> None:
    absent = tmp_path / "chromium"
    report = await measure_provenance(streams=2, messages=20, chromium=absent)
    assert report["browser_verify_ms"] is None
    assert report["browser_verify_10k_ms"] is None
    assert f"browser_verify_ms is null: no Chromium at {absent}" in report["notes"]
    assert report["verify_per_s"] > 0
    assert report["anchor_gas"] > 21_000
