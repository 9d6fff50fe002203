"""`StateWaits`: a waiter wakes on the change that satisfies it, gives up when told."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.engine.waits import StateWaits


async def test_a_waiter_returns_the_state_once_a_change_satisfies_it() -> None:
    states: dict[str, int] = {"a": 1}
    waits: StateWaits[str, int] = StateWaits(states.get)
    waiting = asyncio.ensure_future(waits.until("a", lambda s: s >= 3, timeout=5))
    for value in (2, 3):
        await asyncio.sleep(0)
        states["a"] = value
        waits.changed("a")
    assert await waiting == 3


async def test_a_change_to_another_key_does_not_wake_it_and_it_times_out() -> None:
    states = {"a": 0, "b": 0}
    waits: StateWaits[str, int] = StateWaits(states.get)
    waiting = asyncio.ensure_future(waits.until("a", lambda s: s > 0, timeout=0.2))
    await asyncio.sleep(0)
    states["b"] = 1
    waits.changed("b")
    with pytest.raises(TimeoutError):
        await waiting


async def test_abort_gives_up_on_the_next_change() -> None:
    states = {"a": 0}
    failed: list[str] = []

    def abort() -> None:
        if failed:
            raise RuntimeError(failed[0])

    waits: StateWaits[str, int] = StateWaits(states.get)
    waiting = asyncio.ensure_future(waits.until("a", lambda s: s > 0, timeout=5, abort=abort))
    await asyncio.sleep(0)
    failed.append("store failed")
    waits.changed("a")
    with pytest.raises(RuntimeError, match="store failed"):
        await waiting
