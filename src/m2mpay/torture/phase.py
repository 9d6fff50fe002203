"""What a torture phase is: a name, a set-up shared by its trials, and trials that each
kill a process at a moment drawn from the trial's seed, restart it, and gather facts
that an invariant check reads."""

from __future__ import annotations

import abc
import random

from m2mpay.torture.world import World

__all__ = ["Facts", "Phase"]

# What a trial observed, from the processes' stores and from the chain: integers only
# (token amounts, units, phases encoded by the phase), so that a check is a pure function.
Facts = dict[str, int]


class Phase(abc.ABC):
    """One place where a process can die; `trial` kills and restarts it, `check` judges."""

    name: str

    @abc.abstractmethod
    async def setup(self, world: World) -> None:
        """Start what the trials share (processes, offers); called again after a trial
        that could not be carried out, so that one stuck trial does not doom the rest."""

    @abc.abstractmethod
    async def trial(self, rng: random.Random) -> Facts:
        """Run one trial: prepare, SIGKILL at a moment drawn from `rng`, restart, observe."""

    @abc.abstractmethod
    def check(self, facts: Facts) -> str | None:
        """The first invariant `facts` violate, in words; None if they hold."""

    @abc.abstractmethod
    async def teardown(self) -> None:
        """Stop what `setup` started (processes that died are simply reaped)."""
