"""Who hears of a host's events: the application's side of "once it is durable".

A host tells its `EventFanOut` every event its machine outputs, after the engine
made it durable; the fan-out calls the synchronous listeners with the event and
what it is about (a channel's state, a session's view), and feeds each
subscriber's queue. `EventSource` is the public face a host shows for it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Generic, TypeVar

__all__ = ["EventFanOut", "EventSource"]

E = TypeVar("E")  # the event type
V = TypeVar("V")  # what a listener is given beside the event


class EventFanOut(Generic[E, V]):
    def __init__(self) -> None:
        self._listeners: list[Callable[[E, V], None]] = []
        # Weak: a subscription whose iterator is dropped unread (its `finally` never runs)
        # goes with it instead of filling a queue for ever.
        self._subscribers: weakref.WeakSet[asyncio.Queue[E]] = weakref.WeakSet()

    def add_listener(self, listener: Callable[[E, V], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[E, V], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def publish(self, event: E, about: V | None) -> None:
        """Tell everyone of `event`; listeners only when there is something it is about."""
        if about is not None:
            for listener in self._listeners:
                listener(event, about)
        if not self._subscribers:
            return  # iterating a WeakSet, even empty, costs a microsecond a payment pays
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # a subscriber that does not keep up loses the oldest
            queue.put_nowait(event)

    @property
    def subscribed(self) -> bool:
        """Whether anyone reads: a publisher may skip building an event nobody gets."""
        return bool(self._subscribers)

    def subscribe(self, buffer: int) -> asyncio.Queue[E]:
        """A queue of every event from now on, for a reader that waits on it with its own
        timeouts (a stream's heartbeat); kept until `unsubscribe` or until it is dropped."""
        queue: asyncio.Queue[E] = asyncio.Queue(buffer)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[E]) -> None:
        self._subscribers.discard(queue)

    def events(self, buffer: int) -> AsyncGenerator[E, None]:
        """Subscribe now, not at the first read: an event published between this call and
        the caller's first `anext` is not lost."""
        return self._drain(self.subscribe(buffer))

    async def _drain(self, queue: asyncio.Queue[E]) -> AsyncGenerator[E, None]:
        try:
            while True:
                yield await queue.get()
        finally:
            self.unsubscribe(queue)


class EventSource(Generic[E, V]):
    """A host's listeners and subscribers, over the `EventFanOut` it makes as `_events`."""

    _events: EventFanOut[E, V]

    def add_listener(self, listener: Callable[[E, V], None]) -> None:
        """Call `listener(event, about)` for every event, once it is durable.

        Synchronous and on the host's loop: a listener that has I/O to do queues
        it (a watcher feed, say) instead of blocking the dispatcher.
        """
        self._events.add_listener(listener)

    def remove_listener(self, listener: Callable[[E, V], None]) -> None:
        """Stop calling a listener given to `add_listener` (unknown ones are ignored)."""
        self._events.remove_listener(listener)

    def events(self, *, buffer: int = 10_000) -> AsyncGenerator[E, None]:
        """Every event from this call on, once durable; a subscriber more than `buffer`
        events behind loses the oldest."""
        return self._events.events(buffer)
