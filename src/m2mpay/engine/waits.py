"""Callers waiting for a keyed state (a channel, a session) to reach a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["StateWaits"]

K = TypeVar("K")
S = TypeVar("S")


class StateWaits(Generic[K, S]):
    """`until` re-checks its condition each time the owner says the key `changed`,
    so a waiter costs nothing between changes and never misses one."""

    def __init__(self, state_of: Callable[[K], S | None]) -> None:
        self._state_of = state_of
        self._changed: dict[K, set[asyncio.Event]] = {}

    def changed(self, key: K) -> None:
        for event in self._changed.get(key, ()):
            event.set()

    async def until(
        self,
        key: K,
        done: Callable[[S], bool],
        timeout: float,
        abort: Callable[[], None] = lambda: None,
    ) -> S:
        """The state once `done(state)` holds. `TimeoutError` after `timeout` seconds;
        `abort` is called before each wait and raises to give up (the owner failed)."""
        changed = asyncio.Event()
        self._changed.setdefault(key, set()).add(changed)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    state = self._state_of(key)
                    if state is not None and done(state):
                        return state
                    abort()
                    changed.clear()
                    await changed.wait()
        finally:
            waiting = self._changed.get(key)
            if waiting is not None:
                waiting.discard(changed)
                if not waiting:
                    del self._changed[key]
