"""The application's side of channel events: who is waiting for what.

The node's dispatcher hands every durable `ChannelEvent` to one `ChannelNotifier`,
which resolves the payers waiting for acknowledgements, wakes the callers waiting
for a channel to reach a phase (the host's `StateWaits`) and tells the listeners
and subscribers (the host's `EventFanOut`). Kept apart from the node so that the
node is only the engine's plumbing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from m2mpay.channel.outputs import ChannelEvent, PaymentAcknowledged
from m2mpay.channel.state import ChannelState
from m2mpay.engine import EventFanOut, StateWaits
from m2mpay.errors import ChannelError

__all__ = ["ChannelNotifier"]


class ChannelNotifier:
    def __init__(
        self,
        state_of: Callable[[bytes], ChannelState | None],
        waits: StateWaits[bytes, ChannelState],
        events: EventFanOut[ChannelEvent, ChannelState],
    ) -> None:
        self._state_of = state_of
        self._waits = waits
        self._events = events
        self._acks: dict[bytes, deque[tuple[int, asyncio.Future[None]]]] = {}

    def publish(self, event: ChannelEvent) -> None:
        """Tell everyone waiting on `event`; it is durable by now."""
        if isinstance(event, PaymentAcknowledged):
            self._resolve_acks(event.channel_id, event.seq)
        channel = getattr(event, "channel_id", None)
        state = None
        if channel is not None:
            self._waits.changed(channel)
            state = self._state_of(channel)
        self._events.publish(event, state)

    # ------------------------------------------------------------------ payments

    def in_flight(self, channel: bytes) -> int:
        """Payments on the channel still awaiting the payee's acknowledgement."""
        waiters = self._acks.get(channel)
        return len(waiters) if waiters else 0

    async def room_for_payment(self, channel: bytes, max_in_flight: int, timeout: float) -> None:
        """Return once fewer than `max_in_flight` payments on the channel await
        acknowledgement (backpressure); `timeout` bounds the wait for each."""
        while waiters := self._acks.get(channel):
            if len(waiters) < max_in_flight:
                return
            # asyncio.timeout rather than wait_for: on Python 3.11, wait_for loses a
            # cancellation that arrives just as the awaited future completes.
            async with asyncio.timeout(timeout):
                await asyncio.shield(waiters[0][1])

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
