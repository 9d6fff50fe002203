"""What every host of a pure machine on a `DurableEngine` shares.

A host (the node for channels, the session manager for metered sessions) feeds its
machine inputs from peers, the chain, meters and the clock, and performs what the
machine outputs in one dispatcher, `_perform`. Around that sit the same parts in
every host: the engine, the background tasks and their lifecycle, failing closed
when the store fails (once the log cannot be written, nothing more may be
acknowledged, so every later input is refused), the machine's refusal of an API
call raised as the host's error, and callers waiting for a state to get somewhere.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from m2mpay.engine.durable import DurableEngine, EngineFailed, Machine
from m2mpay.engine.waits import StateWaits
from m2mpay.errors import M2MPayError, StoreError
from m2mpay.lifecycle import Startable, cancel_all, run_in_background
from m2mpay.store import Recovered, Store

__all__ = ["Dispatcher", "EngineHost", "HostCalls", "Refusal", "now_ms"]

K = TypeVar("K")
S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 (the input type)
O = TypeVar("O")  # noqa: E741 (the output type)


def now_ms() -> int:
    """The wall clock as the machines' inputs carry it."""
    return int(time.time() * 1000)


class Refusal(Protocol):
    """The output by which a machine refuses an input (the channel's `Rejected`, a
    session's `SessionRefused`)."""

    @property
    def code(self) -> enum.Enum: ...

    @property
    def message(self) -> str: ...


@dataclass(frozen=True, slots=True)
class HostCalls(Generic[I]):
    """What a host's parts (its dispatcher of effects) call back into it."""

    handle: Callable[[I], object]
    spawn: Callable[[Coroutine[Any, Any, None]], object]
    running: Callable[[], bool]

    def feed_back(self, inp: I) -> None:
        """Handle the input an effect's outcome makes, unless the host stopped meanwhile."""
        if self.running():
            self.handle(inp)


class Dispatcher(Protocol[O]):
    """A host's one dispatcher of effects (the node's `ChannelDispatch`, the session
    manager's `SessionDispatch`)."""

    async def perform(self, outputs: list[O]) -> None:
        """Act on outputs the engine made durable, in order."""

    def perform_refusal(self, outputs: tuple[O, ...]) -> None:
        """Act at once on the outputs of a refused input (nothing was logged)."""


class EngineHost(Startable, Generic[K, S, I, O]):
    """The engine, the tasks and the lifecycle of a host; see the module docstring.

    A subclass names itself (`_what`, for logs) and what its states are (`_item`),
    says how its refusals look (`_refusal`) and which output is its machine's
    refusal (`_refused`), makes its one dispatcher of effects (`_dispatch`, which
    the engine's `_perform` and `_perform_refusal` go to) and follows each change of
    state (`_on_change`). It calls `_waits.changed(key)` once an event about a key is
    durable, which wakes the callers in `_wait`."""

    _what = "engine"  # in messages: "the node is not running"
    _item = "state"  # in messages: "channel still open after 30 s"
    _log = logging.getLogger("m2mpay.engine")
    _refused: ClassVar[type[Refusal]]
    _dispatch: Dispatcher[O]

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
        self._waits: StateWaits[K, S] = StateWaits(self._engine.state)
        self._calls: HostCalls[I] = HostCalls(self._handle, self._spawn, lambda: self._running)

    # -- what a host supplies

    @abc.abstractmethod
    def _refusal(self, code: str, message: str) -> M2MPayError:
        """The error a caller gets when the host cannot take an input (`not_running`,
        `failed`), a wait ran out (`timeout`) or the machine refused (its code)."""

    async def _perform(self, outputs: list[O]) -> None:
        await self._dispatch.perform(outputs)

    def _perform_refusal(self, outputs: tuple[O, ...]) -> None:
        self._dispatch.perform_refusal(outputs)

    @abc.abstractmethod
    def _on_change(self, key: K, state: S) -> None: ...

    # -- lifecycle

    async def _open_engine(self) -> Recovered:
        """Open the store and rebuild the states from it (before `_run_engine`); each
        recovered state goes to `_on_change` as if it had just changed."""
        await self._engine.store.open()
        recovered = await self._engine.recover()
        for key, state in self._engine.states.items():
            self._on_change(key, state)
        if recovered.records or recovered.snapshot:
            self._log.info(
                "recovered %d %ss from %d log records",
                len(self._engine.states),
                self._item,
                len(recovered.records),
            )
        return recovered

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
        await cancel_all(self._tasks)
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
        return run_in_background(self._tasks, coro, self._task_failed)

    def _task_failed(self, exc: BaseException) -> None:
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

    def _request(self, inp: I) -> tuple[O, ...]:
        """Apply the input an API call makes; the machine's refusal is raised as the
        host's error."""
        outputs = self._handle(inp)
        for output in outputs:
            if isinstance(output, self._refused):
                raise self._refusal(output.code.value, output.message)
        return outputs

    # -- waiting

    async def _wait(self, key: K, done: Callable[[S], bool], timeout: float) -> S:
        """The state once `done(state)` holds; a `timeout` refusal after `timeout`
        seconds, a `failed` one once the host failed."""
        try:
            return await self._waits.until(key, done, timeout, self._raise_if_failed)
        except TimeoutError:
            phase = getattr(self._engine.state(key), "phase", None)
            where = phase.value if isinstance(phase, enum.Enum) else "unknown"
            raise self._refusal(
                "timeout", f"{self._item} still {where} after {timeout:g} s"
            ) from None

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._refusal("failed", str(self._failure))
