"""What a torture phase is: a name, a set-up shared by its trials, and trials that each
kill a process at a moment drawn from the trial's seed, restart it, and gather facts
that an invariant check reads."""

from __future__ import annotations

import abc
import contextlib
import random
from typing import Generic

from m2mpay.errors import M2MPayError
from m2mpay.torture.world import S, World

__all__ = ["Facts", "OnOwn", "OnShared", "Phase"]

# What a trial observed, from the processes' stores and from the chain: integers only
# (token amounts, units, phases encoded by the phase), so that a check is a pure function.
Facts = dict[str, int]


class Phase(abc.ABC):
    """One place where a process can die; `trial` kills and restarts it, `check` judges."""

    name: str

    def __init__(self) -> None:
        self._world: World | None = None  # set by `setup`

    @property
    def world(self) -> World:
        """The world the phase was set up in."""
        assert self._world is not None, "the phase is not set up"
        return self._world

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


class OnShared(Phase, Generic[S]):
    """A phase whose trials all run on one thing of the world's (a pair of nodes, a
    device bus…), which the world keeps for the next phase and stops at the end."""

    def __init__(self) -> None:
        super().__init__()
        self._shared: S | None = None

    @property
    def shared(self) -> S:
        assert self._shared is not None, "the phase is not set up"
        return self._shared

    @abc.abstractmethod
    async def _share(self, world: World) -> S:
        """The shared thing, from `world.share` (started there on first use)."""

    async def setup(self, world: World) -> None:
        self._world = world
        self._shared = await self._share(world)

    async def teardown(self) -> None:
        self._shared = None  # the world's, for the next phase; it stops it at the end


class OnOwn(Phase, Generic[S]):
    """A phase whose trials run on a thing of its own (a pair of its own dev accounts,
    a node process beside the shared pair: anything that starts and stops, as what the
    world shares does), started by its `setup` and stopped by its `teardown`."""

    def __init__(self) -> None:
        super().__init__()
        self._own: S | None = None

    @property
    def own(self) -> S:
        assert self._own is not None, "the phase is not set up"
        return self._own

    async def _start_own(self, own: S) -> S:
        """Start `own` as the phase's, to be stopped at teardown."""
        self._own = own
        await own.start()
        return own

    async def teardown(self) -> None:
        if self._own is not None:
            with contextlib.suppress(M2MPayError, OSError):  # what a trial killed is reaped
                await self._own.stop()
        self._own = None
        self._world = None
