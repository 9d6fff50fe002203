"""`m2mpay bench mqtt` with a handful of subscribers: the seller and buyer processes, the
seller's own Mosquitto, and what its JSON says; and its tally, which the zeros rest on.
No timing is asserted: the latencies are the benchmark's to report."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from m2mpay.bench.mqtt import Tally, peak_overlap, seconds_of, tally
from m2mpay.cli import app

SUBSCRIBERS = 6


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    ran = CliRunner().invoke(
        app,
        [
            "bench", "mqtt", "--json",
            "--subscribers", str(SUBSCRIBERS), "--samples", "3",
            "--paid-seconds", "3", "--stagger-seconds", "3", "--concurrency", "4",
            "--buyers", "2", "--publish-hz", "5",
        ],
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    report: dict[str, Any] = json.loads(ran.stdout)
    return report


@pytest.mark.slow
def test_no_message_leaks_after_expiry_and_none_is_missed_while_paid(
    result: dict[str, Any],
) -> None:
    assert result["leaked_after_expiry"] == 0
    assert result["missed_while_paid"] == 0
    assert result["published"] > 0
    assert result["received"] > 0  # the zeros are not those of readers that read nothing


@pytest.mark.slow
def test_the_report_names_what_it_measured_and_with_what(result: dict[str, Any]) -> None:
    for key in ("grant_p50_ms", "grant_p99_ms", "grants_per_s", "broker_rss_mb", "node_rss_mb"):
        assert isinstance(result[key], int | float), key
        assert result[key] > 0, key
    assert result["grant_p50_ms"] <= result["grant_p99_ms"]
    # From the request: the request and its acceptance come before the prepayment, so longer.
    assert 0 < result["grant_from_request_p50_ms"] <= result["grant_from_request_p99_ms"]
    assert result["grant_p99_ms"] <= result["grant_from_request_p99_ms"]
    assert result["grant_samples"] == 3
    assert result["subscribers"] == SUBSCRIBERS
    assert result["peak_concurrent_subscribers"] <= SUBSCRIBERS
    assert result["paid_seconds"] == [3, 6]
    assert result["tolerance_ms"] == 250
    assert "SUBACK" in result["grant_ms_from"]
    assert result["buyer_processes"] == 2


def test_the_tally_counts_a_late_message_and_a_missing_one() -> None:
    published = [(0, 1_000), (1, 2_000), (2, 3_000), (3, 4_000)]
    # Paid from its SUBACK at 1_500 until 3_500: messages 1 and 2 are owed to it.
    exact = {"session": "s", "suback_ms": 1_500, "received": [[1, 2_000], [2, 3_000]]}
    assert tally(published, [exact], {"s": 3_500}, 250) == Tally(0, 0, 0, 0)
    late = exact | {"received": [[1, 2_000], [2, 3_000], [3, 4_000]]}
    assert tally(published, [late, exact], {"s": 3_500}, 250) == Tally(1, 0, 500, 1)
    short = exact | {"received": [[2, 3_000]]}
    assert tally(published, [short], {"s": 3_500}, 250) == Tally(0, 1, 0, 0)
    # Within the tolerance of the end, neither arriving nor not arriving counts.
    assert tally(published, [exact], {"s": 3_100}, 250) == Tally(0, 0, 0, 0)


def test_paid_times_are_staggered_within_their_bounds() -> None:
    paid = [seconds_of(i, 60, 60) for i in range(1_000)]
    assert min(paid) == 60
    assert max(paid) == 120
    assert len(set(paid)) == 61
    assert peak_overlap([(0, 10), (5, 15), (10, 20), (30, 40)]) == 2
