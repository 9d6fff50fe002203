"""The `paywall.channel` torture phase: a short sample through `run_crash`, and each of
its invariants shown able to fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2mpay.torture.crash import run_crash
from m2mpay.torture.paywall import paywall_violation
from m2mpay.torture.phase import Facts

PRICE = 10**15
GOOD: Facts = {
    "served": 3,
    "served_max_total": 3 * PRICE,
    "held": 4 * PRICE,
    "signed": 5 * PRICE,
    "price": PRICE,
}


@pytest.mark.slow
async def test_a_short_sample_of_the_channel_paywall_phase_shows_no_failure(
    tmp_path: Path,
) -> None:
    report = await run_crash(3, seed=0, phases=["paywall.channel"], directory=tmp_path)
    assert report.failures == 0, report.failed
    assert report.phases == {"paywall.channel": {"trials": 3, "failures": 0}}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"served_max_total": 5 * PRICE}, "served before it was durable"),
        ({"served": 5}, "requests served, the seller holds only"),
        ({"held": 6 * PRICE, "served_max_total": 3 * PRICE}, "the buyer signed"),
    ],
)
def test_each_paywall_invariant_can_fail(change: Facts, says: str) -> None:
    assert paywall_violation(GOOD) is None
    violation = paywall_violation(GOOD | change)
    assert violation is not None
    assert says in violation
