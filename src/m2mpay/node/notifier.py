"""The application's side of channel events: who is waiting for what.

The node's dispatcher hands every durable `ChannelEvent` to one `ChannelNotifier`,
which resolves the payers waiting for acknowledgements, wakes callers waiting for a
channel to reach a phase, calls the synchronous listeners and feeds the subscribers'
queues. Kept apart from the node so that the node is only the engine's plumbing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from m2mpay.channel.outputs import ChannelEvent, PaymentAcknowledged
from m2mpay.channel.state import ChannelState
from m2mpay.engine.waits import StateWaits
from m2mpay.errors import ChannelError

__all__ = ["ChannelListener", "ChannelNotifier"]

ChannelListener = Callable[[ChannelEvent, ChannelState], None]


class ChannelNotifier:
    def __init__(
        self,
        state_of: Callable[[bytes], ChannelState | None],
        failure: Callable[[], BaseException | None],
    ) -> None:
        self._state_of = state_of
        self._failure = failure
        self._acks: dict[bytes, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._waits: StateWaits[bytes, ChannelState] = StateWaits(state_of)
        self._subscribers: set[asyncio.Queue[ChannelEvent]] = set()
        self._listeners: list[ChannelListener] = []

    def publish(self, event: ChannelEvent) -> None:
        """Tell everyone waiting on `event`; it is durable by now."""
        if isinstance(event, PaymentAcknowledged):
            self._resolve_acks(event.channel_id, event.seq)
        channel = getattr(event, "channel_id", None)
        if channel is not None:
            self._waits.changed(channel)
            state = self._state_of(channel)
            if state is not None:
                for listener in self._listeners:
                    listener(event, state)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # a subscriber that does not keep up loses the oldest
            queue.put_nowait(event)

    # ------------------------------------------------------------------ payments

    def in_flight(self, channel: bytes) -> int:
        """Payments on the channel still awaiting the payee's acknowledgement."""
        waiters = self._acks.get(channel)
        return len(waiters) if waiters else 0

    def oldest_unacknowledged(self, channel: bytes) -> asyncio.Future[None] | None:
        waiters = self._acks.get(channel)
        return waiters[0][1] if waiters else None

    def expect_ack(self, channel: bytes, seq: int) -> asyncio.Future[None]:
        """A future resolved once the payee acknowledges proof `seq` or a later one."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks.setdefault(channel, deque()).append((seq, future))
        return future

    def _resolve_acks(self, channel: bytes, seq: int) -> None:
        waiters = self._acks.get(channel)
        while waiters and waiters[0][0] <= seq:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(None)
        if waiters is not None and not waiters:
            del self._acks[channel]

    def fail_payments(self, error: ChannelError) -> None:
        """The node stops: nobody gets an acknowledgement any more."""
        for waiters in self._acks.values():
            for _, future in waiters:
                if not future.done():
                    future.set_exception(error)
                    future.exception()  # nobody may be waiting; that is not an error
        self._acks.clear()

    # ------------------------------------------------------------------ waiting

    async def wait(
        self, channel: bytes, done: Callable[[ChannelState], bool], timeout: float
    ) -> ChannelState:
        """The channel's state once `done(state)` holds; `ChannelError` on timeout."""
        try:
            return await self._waits.until(channel, done, timeout, self._raise_if_failed)
        except TimeoutError:
            state = self._state_of(channel)
            phase = state.phase.value if state else "unknown"
            raise ChannelError("timeout", f"channel still {phase} after {timeout:g} s") from None

    def _raise_if_failed(self) -> None:
        failure = self._failure()
        if failure is not None:
            raise ChannelError("node_failed", str(failure))

    # ------------------------------------------------------------------ listening

    def add_listener(self, listener: ChannelListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: ChannelListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def events(self, buffer: int) -> AsyncIterator[ChannelEvent]:
        queue: asyncio.Queue[ChannelEvent] = asyncio.Queue(buffer)
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)
