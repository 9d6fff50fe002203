"""Running a pure state machine durably: apply at once, log, act once durable.

`DurableEngine.handle` applies an input to the state it is about and appends the
input with its outputs to the store straight away; the outputs wait until the
committer has flushed the store past that record, then go to `perform` in order.
Many inputs share one flush (group commit). A refused input changes nothing, so
it is neither logged nor delayed. Restart loads the newest snapshot and replays
the records after it through the same transition.

The channel machine runs on one engine, metered sessions on another.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, Generic, Protocol, TypeVar

from m2mpay.errors import StoreError
from m2mpay.store import Recovered, Store

__all__ = ["DurableEngine", "EngineFailed", "Machine"]

K = TypeVar("K")
S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 (the input type)
O = TypeVar("O")  # noqa: E741 (the output type)

# Inputs handled back to back before a hot loop lets the committer run: small enough
# that durability and performing start while more inputs are handled (pipelining),
# large enough that a batch amortises the flush.
YIELD_EVERY: Final = 32


class Machine(Protocol[K, S, I, O]):
    """A pure state machine over many keyed states, and how its log is written."""

    def key(self, inp: I) -> K | None: ...

    def transition(self, state: S | None, inp: I) -> tuple[S | None, tuple[O, ...]]: ...

    def is_refusal(self, before: S | None, after: S | None, outputs: tuple[O, ...]) -> bool: ...

    def encode_record(self, inp: I, outputs: tuple[O, ...]) -> bytes: ...

    def decode_record(self, data: bytes) -> I: ...

    def encode_snapshot(self, states: Mapping[K, S]) -> bytes: ...

    def decode_snapshot(self, data: bytes) -> dict[K, S]: ...


class EngineFailed(StoreError):
    """The store failed under the engine: nothing more may be acknowledged."""


class DurableEngine(Generic[K, S, I, O]):
    """See the module docstring."""

    def __init__(
        self,
        machine: Machine[K, S, I, O],
        store: Store,
        perform: Callable[[list[O]], Awaitable[None]],
        *,
        on_refusal: Callable[[tuple[O, ...]], None],
        on_change: Callable[[K, S], None] | None = None,
        snapshot_every: int = 50_000,
    ) -> None:
        self.machine = machine
        self.store = store
        self.states: dict[K, S] = {}
        self._perform = perform
        self._on_refusal = on_refusal
        self._on_change = on_change
        self._snapshot_every = snapshot_every
        self._pending: deque[tuple[int, tuple[O, ...]]] = deque()
        self._wakeup = asyncio.Event()
        self._since_snapshot = 0
        self._since_yield = 0
        self._last_seq = 0
        self._durable_waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self.failure: BaseException | None = None

    def state(self, key: K) -> S | None:
        """One key's state (`states` itself is replaced when a snapshot is recovered)."""
        return self.states.get(key)

    async def recover(self) -> Recovered:
        """Rebuild the states from the store; returns what was read (meta included)."""
        recovered = await self.store.load()
        if recovered.snapshot is not None:
            self.states = self.machine.decode_snapshot(recovered.snapshot.data)
        for record in recovered.records:
            inp = self.machine.decode_record(record.data)
            key = self.machine.key(inp)
            state = self.states.get(key) if key is not None else None
            new, _ = self.machine.transition(state, inp)
            if new is not None and key is not None:
                self.states[key] = new
        self._since_snapshot = len(recovered.records)
        return recovered

    def handle(self, inp: I) -> tuple[O, ...]:
        """Apply one input; log it; queue its outputs until it is durable."""
        if self.failure is not None:
            raise EngineFailed(f"the store failed: {self.failure}")
        key = self.machine.key(inp)
        state = self.states.get(key) if key is not None else None
        new, outputs = self.machine.transition(state, inp)
        if self.machine.is_refusal(state, new, outputs):
            self._on_refusal(outputs)
            return outputs
        if new is state and not outputs:
            return outputs
        if new is not None and key is not None:
            self.states[key] = new
            if self._on_change is not None:
                self._on_change(key, new)
        seq = self._last_seq = self.store.append(self.machine.encode_record(inp, outputs))
        self._since_snapshot += 1
        self._since_yield += 1
        self._pending.append((seq, outputs))
        self._wakeup.set()
        return outputs

    def put_meta(self, key: str, value: bytes | None) -> None:
        """Bookkeeping made durable with the next flush, atomically with the records."""
        self.store.put_meta(key, value)
        self._wakeup.set()

    def durable(self) -> asyncio.Future[None]:
        """Resolves once every input handled so far is durable and its outputs performed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failure is not None:
            future.set_exception(EngineFailed(f"the store failed: {self.failure}"))
        elif not self._pending:
            future.set_result(None)
        else:
            self._durable_waiters.append((self._last_seq, future))
            self._wakeup.set()
        return future

    async def yield_if_busy(self) -> None:
        """Let the committer flush and perform after a run of inputs (`YIELD_EVERY`)."""
        if self._since_yield >= YIELD_EVERY:
            self._since_yield = 0
            await asyncio.sleep(0)

    async def run(self) -> None:
        """The committer: flush, perform what became durable, snapshot now and then."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                await self.drain()
                if self._since_snapshot >= self._snapshot_every and not self._pending:
                    await self.snapshot()
        except StoreError as exc:
            self.failure = exc
            while self._durable_waiters:
                _, future = self._durable_waiters.popleft()
                if not future.done():
                    future.set_exception(EngineFailed(f"the store failed: {exc}"))
                    future.exception()  # nobody may be waiting any more
            raise

    async def drain(self) -> None:
        """Flush the store and perform the outputs of everything now durable, in order."""
        while self._pending or self.store.pending_count:
            durable = await self.store.flush()
            batch: list[O] = []
            while self._pending and self._pending[0][0] <= durable:
                batch.extend(self._pending.popleft()[1])
            if batch:
                await self._perform(batch)
            while self._durable_waiters and self._durable_waiters[0][0] <= durable:
                _, future = self._durable_waiters.popleft()
                if not future.done():
                    future.set_result(None)

    async def snapshot(self) -> None:
        # Taken only when every appended record is durable, so the states in memory
        # are exactly the states after record `durable_seq`.
        if self._pending or self.store.pending_count:
            return
        seq = self.store.durable_seq
        if seq == 0:
            return
        await self.store.save_snapshot(seq, self.machine.encode_snapshot(self.states))
        self._since_snapshot = 0
