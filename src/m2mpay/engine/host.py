"""What every host of a pure machine on a `DurableEngine` shares.

A host (the node for channels, the session manager for metered sessions) feeds its
machine inputs from peers, the chain, meters and the clock, and performs what the
machine outputs in one dispatcher, `_perform`. Around that sit the same parts in
every host: the engine, the background tasks and their lifecycle, and failing
closed when the store fails: once the log cannot be written, nothing more may be
acknowledged, so every later input is refused.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from m2mpay.engine.durable import DurableEngine, EngineFailed, Machine
from m2mpay.errors import M2MPayError, StoreError
from m2mpay.lifecycle import Startable
from m2mpay.store import Recovered, Store

__all__ = ["EngineHost"]

K = TypeVar("K")
S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 (the input type)
O = TypeVar("O")  # noqa: E741 (the output type)


class EngineHost(Startable, Generic[K, S, I, O]):
    """The engine, the tasks and the lifecycle of a host; see the module docstring.

    A subclass names itself (`_what`, for logs), says how its refusals look
    (`_refusal`), and supplies the engine's three callbacks: `_perform` (the one
    dispatcher of effects), `_perform_refusal` and `_on_change`."""

    _what = "engine"  # in messages: "the node is not running"
    _log = logging.getLogger("m2mpay.engine")

    def __init__(self, machine: Machine[K, S, I, O], store: Store, *, snapshot_every: int) -> None:
        self._engine: DurableEngine[K, S, I, O] = DurableEngine(
            machine,
            store,
            self._perform,
            on_refusal=self._perform_refusal,
            on_change=self._on_change,
            snapshot_every=snapshot_every,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False  # taking inputs
        self._started = False  # started and not yet stopped (even if failed since)
        self._failure: BaseException | None = None

    # -- what a host supplies

    @abc.abstractmethod
    def _refusal(self, code: str, message: str) -> M2MPayError:
        """The error a caller gets when the host cannot take an input (`not_running`,
        `failed`)."""

    @abc.abstractmethod
    async def _perform(self, outputs: list[O]) -> None: ...

    @abc.abstractmethod
    def _perform_refusal(self, outputs: tuple[O, ...]) -> None: ...

    @abc.abstractmethod
    def _on_change(self, key: K, state: S) -> None: ...

    # -- lifecycle

    async def _open_engine(self) -> Recovered:
        """Open the store and rebuild the states from it (before `_run_engine`)."""
        await self._engine.store.open()
        return await self._engine.recover()

    def _run_engine(self) -> None:
        self._running = self._started = True
        self._spawn(self._engine.run())

    async def _stop_engine(self) -> bool:
        """Cancel the tasks and, unless the store failed, finish what is logged and
        snapshot; False if the host was not started. A host that failed still stops,
        so that what it holds (connections, devices, the store) is released. The store
        stays open for the subclass to finish with (`_close_store`)."""
        if not self._started:
            return False
        self._running = self._started = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._failure is None and self._engine.failure is None:
            with contextlib.suppress(StoreError):
                await self._engine.drain()
                await self._engine.snapshot()
        return True

    async def _close_store(self) -> None:
        await self._engine.store.close()

    # -- tasks

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._log.error("%s task failed: %r", self._what, exc, exc_info=exc)
            if isinstance(exc, StoreError):
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """The store failed: nothing may be acknowledged any more."""
        self._failure = exc
        self._running = False
        for task in list(self._tasks):
            task.cancel()

    async def _every(self, interval_s: float, tick: Callable[[], Awaitable[None]]) -> None:
        """Run `tick` every `interval_s` while the host runs (a ticker task's body)."""
        while True:
            await asyncio.sleep(interval_s)
            await tick()

    # -- inputs

    def _check_running(self) -> None:
        if self._failure is not None:
            raise self._refusal(
                "failed", f"the {self._what} stopped after a failure: {self._failure}"
            )
        if not self._running:
            raise self._refusal("not_running", f"the {self._what} is not running")

    def _handle(self, inp: I) -> tuple[O, ...]:
        """Apply one input durably (see `DurableEngine.handle`)."""
        self._check_running()
        try:
            return self._engine.handle(inp)
        except EngineFailed as exc:
            raise self._refusal("failed", str(exc)) from exc
