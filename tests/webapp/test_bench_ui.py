"""`m2mpay bench ui --json` as a person runs it: one JSON object with every measure (the
page ones keyed by page), from node processes and Chromium (its numbers are the bench's to
report, never asserted against a clock here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from m2mpay.bench.ui import MEASURES, PAGES


@pytest.mark.slow  # two node processes, Chromium, cold page loads, six payments, 300 blocks: ~60 s
def test_bench_ui_prints_time_to_interactive_and_javascript_per_page() -> None:
    command = ["bench", "ui", "--json", "--runs", "1", "--explorer-blocks", "300"]
    done = subprocess.run(
        [sys.executable, "-m", "m2mpay", *command],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert set(MEASURES) <= set(result)
    assert "why_not" not in result
    for measure in ("tti_ms", "js_gzip_kb"):
        assert set(result[measure]) == set(PAGES)
        assert all(value > 0 for value in result[measure].values())
    # The blocks page on the grown chain, timed in the browser.
    assert result["explorer_blocks"] == 300
    assert result["explorer_page_ms"] > 0
    # The pages share one entry; only the dashboard fetches uPlot's chunk as well, so it
    # loads more and every other page the same.
    kb = result["js_gzip_kb"]
    others = {value for page, value in kb.items() if page != "dashboard"}
    assert len(others) == 1, kb
    assert kb["dashboard"] > others.pop(), kb
    # A payment's point was drawn on the dashboard: a time, whatever it is.
    assert result["dashboard_latency_ms"] > 0
