"""`m2mpay torture crash`: a small fixed sample of every phase, through the command
itself, and the proof that the checks can fail."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from m2mpay.cli import app
from m2mpay.torture.bus import bus_violation
from m2mpay.torture.crash import (
    PHASES,
    CrashReport,
    _run_phase,
    phase_of,
    run_crash,
    trial_seeds,
)
from m2mpay.torture.defence import WatcherCrash
from m2mpay.torture.grant_broker import BACK, broker_violation
from m2mpay.torture.grants import MOMENTS, grant_violation
from m2mpay.torture.grants import PRICE as GRANT_PRICE
from m2mpay.torture.market import market_violation
from m2mpay.torture.pair import payment_violation
from m2mpay.torture.phase import Facts, Phase
from m2mpay.torture.provenance import provenance_violation
from m2mpay.torture.sessions import PRICE, WINDOW, session_violation
from m2mpay.torture.world import TortureError, World

# Seeds 0 … len(PHASES)-1 are one trial of each phase, always the same kill moments.
SAMPLE_SEED = 0


# The sample runs every phase's trial in turn (about 2 minutes alone, nearer 5 on two busy
# cores); each phase bounds its own waits, so the suite's 300 s per test would only
# catch a slow machine, not a hang. The first test to ask for the sample pays for it.
_SAMPLE_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    result = CliRunner().invoke(
        app,
        ["torture", "crash", "--trials", str(len(PHASES)), "--seed", str(SAMPLE_SEED), "--json"],
    )
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.slow
@pytest.mark.timeout(_SAMPLE_TIMEOUT_S)
def test_fixed_sample_of_every_phase_shows_no_failure(sample: dict[str, Any]) -> None:
    assert sample["failures"] == 0, sample["failed"]
    assert sample["first_failing_seed"] is None
    assert sample["phases"] == {name: {"trials": 1, "failures": 0} for name in PHASES}


@pytest.mark.slow
@pytest.mark.timeout(_SAMPLE_TIMEOUT_S)
def test_json_report_shape(sample: dict[str, Any]) -> None:
    assert {"trials", "failures", "phases", "first_failing_seed"} <= set(sample)
    assert sample["trials"] == len(PHASES)
    assert sample["seed"] == SAMPLE_SEED
    assert sample["seconds"] > 0
    assert sample["trials_per_minute"] > 0


def test_a_seed_names_its_phase_and_a_run_keeps_the_asked_phases() -> None:
    assert [phase_of(s) for s in range(len(PHASES))] == list(PHASES)
    seeds = trial_seeds(3, 7, ["dispute.payee"])
    assert [phase_of(s) for s in seeds] == ["dispute.payee"] * 3
    assert seeds[0] >= 7
    with pytest.raises(ValueError, match="no such phase"):
        trial_seeds(1, 0, ["nap"])


@pytest.mark.slow
async def test_a_violated_invariant_is_reported_with_its_seed(tmp_path: Path) -> None:
    """The same trial as in the sample, but its payee's store is made to report one
    unit less than it acknowledged: the run must count it and name the seed."""
    seed = PHASES.index("stream.payee")

    def lose_a_unit(phase: str, facts: Facts) -> Facts:
        return facts | {"received": facts["received"] - 1}

    report = await run_crash(
        1, seed=seed, phases=["stream.payee"], tamper=lose_a_unit, directory=tmp_path
    )
    assert (report.trials, report.failures) == (1, 1)
    assert report.first_failing_seed == seed
    assert report.phases == {"stream.payee": {"trials": 1, "failures": 1}}
    [failed] = report.failed
    assert failed["seed"] == seed
    assert "disagree" in failed["violation"] or "lost" in failed["violation"]


GOOD: Facts = {
    "acked": 90,
    "restored": 95,
    "sent": 100,
    "acked_total": 100,
    "received": 100,
    "deposit_a": 1_000,
    "settled_a": 900,
    "settled_b": 100,
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"restored": 89}, "acknowledged payment lost: after the restart the payee holds 89"),
        ({"received": 89, "sent": 89, "acked_total": 89}, "the payee holds 89 of 90"),
        ({"acked_total": 99}, "disagree on the newest state"),
        ({"received": 99}, "disagree on the newest state"),
        ({"settled_a": 901, "settled_b": 99}, "settled on chain (901, 99) differs"),
    ],
)
def test_each_payment_invariant_can_fail(change: Facts, says: str) -> None:
    assert payment_violation("payee", GOOD) is None
    violation = payment_violation("payee", GOOD | change)
    assert violation is not None
    assert says in violation


SESSION: Facts = GOOD | {
    "target": 100,
    "sent": 100 * PRICE,
    "acked_total": 100 * PRICE,
    "received": 100 * PRICE,
    "deposit_a": 1_000 * PRICE,
    "settled_a": 900 * PRICE,
    "settled_b": 100 * PRICE,
}
for _side in ("bought", "sold"):
    SESSION |= {
        f"{_side}_units": 100,
        f"{_side}_value": 100 * PRICE,
        f"{_side}_paid": 100 * PRICE,
        f"{_side}_stopped": 1,
        f"{_side}_countersigned": 1,
        f"{_side}_exposure": WINDOW,
    }


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"sold_exposure": WINDOW + 1}, "beyond the credit window: the seller's side saw"),
        ({"bought_countersigned": 0}, "receipts both signed"),
        ({"sold_units": 101}, "disagree on the session"),
        (
            {f"{side}_{key}": 99 * PRICE for side in ("bought", "sold") for key in ("paid",)},
            "paid in full",
        ),
        ({"received": 99 * PRICE}, "service released without a durable payment"),
        ({"received": 101 * PRICE}, "the channel moved"),
    ],
)
def test_each_session_invariant_can_fail(change: Facts, says: str) -> None:
    assert session_violation("seller", SESSION) is None
    violation = session_violation("seller", SESSION | change)
    assert violation is not None
    assert says in violation


def test_the_returning_payee_must_find_what_it_held() -> None:
    phase = WatcherCrash()
    assert phase.check(GOOD | {"returned": 100}) is None
    violation = phase.check(GOOD | {"returned": 99})
    assert violation is not None
    assert "returning payee's node says it got 99" in violation


BUS: Facts = {
    "permitted": 10,
    "stored": 1,
    "received": 1,
    "acked": 0,
    "redelivered": 1,
    "same": 1,
    "most_units": 10,
    "pending_after_ack": 0,
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"most_units": 11}, "released 11 units, only 10 were permitted"),
        ({"received": 0, "redelivered": 0}, "said it stored was lost"),
        ({"redelivered": 0}, "never acknowledged was not sent again"),
        ({"same": 0}, "not the one the device had received"),
        ({"pending_after_ack": 1}, "acknowledged command(s) are sent again"),
    ],
)
def test_each_bus_invariant_can_fail(change: Facts, says: str) -> None:
    assert bus_violation(BUS) is None
    violation = bus_violation(BUS | change)
    assert violation is not None
    assert says in violation


class _CannotStart(Phase):
    name = "stream.payer"

    async def setup(self, world: World) -> None:
        raise TortureError("no process would start")

    async def trial(self, rng: random.Random) -> Facts:
        raise AssertionError("a phase that is not set up runs no trial")

    def check(self, facts: Facts) -> str | None:
        return None

    async def teardown(self) -> None:
        return None


async def test_a_phase_that_cannot_start_fails_its_trials_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    report = CrashReport(seed=0)
    await _run_phase(_CannotStart(), World(tmp_path), [0, 5], report, None, None)
    assert (report.trials, report.failures, report.first_failing_seed) == (2, 2, 0)
    assert all("set-up failed: TortureError" in f["violation"] for f in report.failed)


GRANT: Facts = {
    "moment": MOMENTS.index("extension"),
    "target": 5,
    "acked": 2 * GRANT_PRICE,
    "restored": 5 * GRANT_PRICE,
    "readable_after_restart": 0,
    "readable_after_end": 0,
    "grant_ended": 1,
    "permitted_s": 5,
    "held_ms": 4_990,
    "down_ms": 0,
    "received_messages": 100,
    "leaked": 0,
    "sent": 5 * GRANT_PRICE,
    "acked_total": 5 * GRANT_PRICE,
    "received": 5 * GRANT_PRICE,
    "deposit_a": 1_000 * GRANT_PRICE,
    "settled_a": 995 * GRANT_PRICE,
    "settled_b": 5 * GRANT_PRICE,
}
for _side in ("bought", "sold"):
    GRANT |= {
        f"{_side}_units": 5,
        f"{_side}_value": 5 * GRANT_PRICE,
        f"{_side}_paid": 5 * GRANT_PRICE,
        f"{_side}_stopped": 1,
        f"{_side}_countersigned": 1,
    }


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"readable_after_restart": 1}, "read without a live grant after the restart"),
        ({"readable_after_end": 2}, "2 after the end"),
        ({"leaked": 3}, "3 message(s) published after the paid end"),
        ({"received_messages": 0}, "received nothing"),
        ({"sold_countersigned": 0}, "receipts both signed"),
        ({"bought_units": 4}, "disagree on the session"),
        ({"bought_units": 4, "sold_units": 4}, "paid seconds lost: 5 s bought"),
        ({"permitted_s": 4}, "the grant permitted 4 s"),
        ({"held_ms": 4_700}, "held the live topic 4700 ms of 5 s paid, the seller down 0 ms"),
        ({"held_ms": 3_000, "down_ms": 1_700}, "held the live topic 3000 ms of 5 s paid"),
        ({"grant_ended": 0}, "held the live topic"),
        ({"received": 6 * GRANT_PRICE}, "the channel moved"),
        ({"restored": GRANT_PRICE}, "acknowledged payment lost"),
    ],
)
def test_each_grant_invariant_can_fail(change: Facts, says: str) -> None:
    assert grant_violation(GRANT) is None
    # The time the seller was down is the one time the reader may not hold the topic.
    assert grant_violation(GRANT | {"held_ms": 3_000, "down_ms": 1_750}) is None
    violation = grant_violation(GRANT | change)
    assert violation is not None
    assert says in violation


PROVENANCE: Facts = SESSION | {
    "moment": 0,
    "streams": 2,
    "streams_bad": 0,
    "anchored": 3,
    "anchors_bad": 0,
    "stream_found": 1,
    "stream_units": 100,
    "stream_paid": 100 * PRICE,
    "stream_receipt": 1,
    "export_left_ok": 1,
    "export_ok": 1,
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"streams_bad": 1}, "1 of 2 streams do not verify after the restart"),
        ({"stream_found": 0}, "has no stream after the restart"),
        ({"stream_units": 99}, "the stream records (99, "),
        ({"stream_paid": 99 * PRICE}, "the session sold (100, "),
        ({"stream_receipt": 0}, "does not end with its receipt"),
        ({"anchors_bad": 1}, "1 of 3 anchored heads no longer prove"),
        ({"export_left_ok": 0}, "an export cut short left a file"),
        ({"export_ok": 0}, "an export after the restart does not verify"),
        ({"sold_countersigned": 0}, "receipts both signed"),
    ],
)
def test_each_provenance_invariant_can_fail(change: Facts, says: str) -> None:
    assert provenance_violation(PROVENANCE) is None
    violation = provenance_violation(PROVENANCE | change)
    assert violation is not None
    assert says in violation


# The broker phase: the grant's facts, with the node back after the grant's end.
BROKER: Facts = GRANT | {
    "moment": BACK.index("after the end"),
    "broker_outlived_node": 0,
    "lost_grants": 0,
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"broker_outlived_node": 1}, "the seller's broker outlived its node"),
        ({"lost_grants": 1}, "1 grant(s) still paid could not read the live topic"),
        ({"leaked": 2}, "2 message(s) published after the paid end"),
        ({"readable_after_restart": 1}, "read without a live grant after the restart"),
        ({"bought_units": 4, "sold_units": 4}, "paid seconds lost: 5 s bought"),
        ({"restored": GRANT_PRICE}, "acknowledged payment lost"),
    ],
)
def test_each_broker_invariant_can_fail(change: Facts, says: str) -> None:
    assert broker_violation(BROKER) is None
    violation = broker_violation(BROKER | change)
    assert violation is not None
    assert says in violation
    if "acknowledged" not in says:
        assert "(after the end)" in violation or "(back after the end)" in violation


MARKET: Facts = {
    "planned": 21,
    "ops_done": 21,
    "recovered": 1,
    "kills": 2,
    "txs_mined": 21,
    "nonces_used": 21,
    "ops_twice": 0,
    "txs_reverted": 0,
    "supply_moved": 0,
    "tokens_moved": 0,
    "reserve_gap": 0,
    "k_fell": 0,
    "over_shares": 0,
    "shares_gap": 0,
    "double_ratings": 0,
    "ratings_missing": 0,
    "listing_wrong": 0,
    "escrow_wrong": 0,
    "escrow_both": 0,
    "escrow_held_gap": 0,
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"ops_done": 20}, "finished 20 of 21 operations"),
        ({"nonces_used": 22}, "used 22 nonces, its journal logged 21 mined"),
        ({"ops_twice": 1}, "1 operation(s) mined more than one transaction"),
        ({"txs_reverted": 1}, "1 of the actor's transactions reverted"),
        ({"reserve_gap": 5}, "reserves differ from its balances"),
        ({"k_fell": 1}, "the product of the reserves fell"),
        ({"over_shares": 1}, "took more than its shares"),
        ({"shares_gap": 3}, "the provider's shares differ"),
        ({"double_ratings": 1}, "rated more than once by a party"),
        ({"ratings_missing": 1}, "a rating the journal finished is not on chain"),
        ({"listing_wrong": 1}, "not what the journal last asked for"),
        ({"escrow_wrong": 1}, "did not end as its script said"),
        ({"escrow_both": 1}, "both claimed and refunded"),
        ({"escrow_held_gap": 7}, "other than the deposits still open"),
        ({"supply_moved": 1}, "supply changed"),
        ({"tokens_moved": -1}, "tokens left or joined"),
    ],
)
def test_each_market_invariant_can_fail(change: Facts, says: str) -> None:
    assert market_violation(MARKET) is None
    violation = market_violation(MARKET | change)
    assert violation is not None
    assert says in violation
