"""Ending background tasks: none still runs once its owner has stopped."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.lifecycle import cancel_and_wait


async def test_every_task_given_has_ended_and_none_stands_for_no_task() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    tasks = [asyncio.ensure_future(forever()) for _ in range(3)]
    await started.wait()
    await cancel_and_wait(tasks[0], None, *tasks[1:])
    assert all(task.done() and task.cancelled() for task in tasks)
    await cancel_and_wait()
    await cancel_and_wait(None)


async def test_a_task_that_failed_before_it_was_cancelled_still_says_so() -> None:
    async def broken() -> None:
        raise ValueError("broken")

    task = asyncio.ensure_future(broken())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="broken"):
        await cancel_and_wait(task)
