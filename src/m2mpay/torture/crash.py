"""`m2mpay torture crash`: SIGKILL processes at random moments, in every phase, and
check the money-safety invariants after each restart.

A trial is named by its seed: the seed picks the phase (`PHASES[seed % len(PHASES)]`)
and, through a `random.Random(seed)`, the kill moment and the amounts. A run takes the
seeds from `--seed` on, keeping those whose phase was asked for, and runs each phase's
trials together on one set-up (one chain for the whole run), so a trial costs a
restart, not a deployment. `first_failing_seed` replays with `--seed S --trials 1`.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m2mpay.torture.bus import BusCrash
from m2mpay.torture.chainhost import ChainHostCrash
from m2mpay.torture.defence import WatcherCrash
from m2mpay.torture.device import DeviceCrash
from m2mpay.torture.grant_broker import BrokerCrash
from m2mpay.torture.grants import GrantCrash
from m2mpay.torture.market import MarketCrash
from m2mpay.torture.payments import CloseCrash, DisputeCrash, StreamCrash
from m2mpay.torture.paywall import PaywallCrash
from m2mpay.torture.phase import Facts, Phase
from m2mpay.torture.provenance import ProvenanceCrash
from m2mpay.torture.resale import ResaleCrash
from m2mpay.torture.sessions import SessionCrash
from m2mpay.torture.world import World

__all__ = ["PHASES", "CrashReport", "phase_of", "run_crash", "trial_seeds"]


def _phases() -> list[Phase]:
    return [
        StreamCrash("payer"),
        StreamCrash("payee"),
        CloseCrash("payer"),
        CloseCrash("payee"),
        DisputeCrash(),
        SessionCrash("buyer"),
        SessionCrash("seller"),
        ResaleCrash(),
        WatcherCrash(),
        DeviceCrash("device"),
        DeviceCrash("host"),
        BusCrash(),
        ChainHostCrash(),
        GrantCrash(),
        ProvenanceCrash(),
        BrokerCrash(),
        MarketCrash(),
        PaywallCrash(),
    ]


PHASES: tuple[str, ...] = tuple(phase.name for phase in _phases())

Progress = Callable[[str, int, int, str | None], None]  # phase, seed, done, violation
Tamper = Callable[[str, Facts], Facts]  # for tests: what a broken store would report


@dataclass
class CrashReport:
    seed: int
    trials: int = 0
    failures: int = 0
    phases: dict[str, dict[str, int]] = field(default_factory=dict)
    first_failing_seed: int | None = None
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, phase: str, seed: int, violation: str | None) -> None:
        self.trials += 1
        counts = self.phases.setdefault(phase, {"trials": 0, "failures": 0})
        counts["trials"] += 1
        if violation is not None:
            self.failures += 1
            counts["failures"] += 1
            self.failed.append({"seed": seed, "phase": phase, "violation": violation})
            if self.first_failing_seed is None or seed < self.first_failing_seed:
                self.first_failing_seed = seed

    def as_json(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "failures": self.failures,
            "phases": self.phases,
            "first_failing_seed": self.first_failing_seed,
            "seed": self.seed,
            "failed": self.failed,
            "seconds": round(self.seconds, 1),
            "trials_per_minute": round(60 * self.trials / self.seconds, 1) if self.seconds else 0,
        }


def phase_of(seed: int) -> str:
    return PHASES[seed % len(PHASES)]


def trial_seeds(trials: int, seed: int, phases: Sequence[str] | None = None) -> list[int]:
    """The first `trials` seeds from `seed` on whose phase is among `phases`."""
    wanted = set(phases or PHASES)
    unknown = wanted - set(PHASES)
    if unknown:
        raise ValueError(f"no such phase: {', '.join(sorted(unknown))} (phases: {PHASES})")
    seeds: list[int] = []
    candidate = seed
    while len(seeds) < trials:
        if phase_of(candidate) in wanted:
            seeds.append(candidate)
        candidate += 1
    return seeds


async def _run_phase(
    phase: Phase,
    world: World,
    seeds: list[int],
    report: CrashReport,
    progress: Progress | None,
    tamper: Tamper | None,
) -> None:
    ready = await _set_up(phase, world)
    try:
        for seed in seeds:
            violation: str | None
            if ready is not None:
                violation = f"set-up failed: {ready}"
            else:
                try:
                    facts = await phase.trial(random.Random(seed))
                except Exception as exc:  # a trial that cannot finish is a failure
                    violation = f"trial did not complete: {type(exc).__name__}: {exc}"
                    # What is stuck stays behind: the next trial starts on fresh processes.
                    await phase.teardown()
                    await world.reset()
                    ready = await _set_up(phase, world)
                else:
                    if tamper is not None:
                        facts = tamper(phase.name, facts)
                    violation = phase.check(facts)
            report.record(phase.name, seed, violation)
            if progress is not None:
                progress(phase.name, seed, report.trials, violation)
    finally:
        await phase.teardown()


async def _set_up(phase: Phase, world: World) -> str | None:
    """Set `phase` up; what went wrong, if it could not be (its trials then fail)."""
    try:
        await phase.setup(world)
    except Exception as exc:  # a phase that cannot start fails its trials, not the run
        await world.reset()
        return f"{type(exc).__name__}: {exc}"
    return None


async def run_crash(
    trials: int,
    *,
    seed: int,
    phases: Sequence[str] | None = None,
    progress: Progress | None = None,
    tamper: Tamper | None = None,
    directory: Path | None = None,
) -> CrashReport:
    """Run `trials` trials from `seed` on; see the module's docstring."""
    seeds = trial_seeds(trials, seed, phases)
    report = CrashReport(seed=seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="m2mpay-torture-", dir=directory) as tmp:
        world = World(Path(tmp))
        try:
            await world.start()
            for phase in _phases():
                mine = [s for s in seeds if phase_of(s) == phase.name]
                if mine:
                    await _run_phase(phase, world, mine, report, progress, tamper)
        finally:
            await world.stop()
    report.seconds = time.perf_counter() - started
    return report
