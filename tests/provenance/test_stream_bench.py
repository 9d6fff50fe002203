"""`m2mpay bench provenance --json` runs small and reports what the issue names."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from m2mpay.cli import app

runner = CliRunner()


def test_bench_provenance_json_reports_writes_verifies_overhead_and_anchor_gas() -> None:
    result = runner.invoke(
        app, ["bench", "provenance", "--streams", "4", "--messages", "200", "--json"]
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
    assert "browser_verify_10k_ms" not in report
    assert "anchor_gas_per_message" in report["notes"]
    assert "browser_verify_10k_ms" in report["notes"]
