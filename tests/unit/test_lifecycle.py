"""Ending background tasks: none still runs once its owner has stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from m2mpay.lifecycle import cancel_all, cancel_and_wait, find_program, raise_if_cancelling


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


async def test_a_host_s_tasks_all_end_even_one_that_lost_its_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host's stop (`cancel_all`) must not wait for ever on a task whose cancellation
    Python 3.11's wait_for dropped: CI once hung 300 s in a node's stop on such a task."""
    monkeypatch.setattr("m2mpay.lifecycle.CANCEL_AGAIN_S", 0.05)
    swallowed: list[int] = []

    async def reconnecting() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(1)  # the cancellation met the result it awaited

    async def broken() -> None:
        raise ValueError("broken")

    async def forever() -> None:
        await asyncio.Event().wait()

    tasks = [asyncio.ensure_future(work()) for work in (reconnecting, broken, forever)]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_all(tasks), 5)
    assert all(task.done() for task in tasks)
    assert swallowed == [1]
    assert not tasks[1].cancelled()
    assert isinstance(tasks[1].exception(), ValueError)
    assert tasks[2].cancelled()


class _Disguised(Exception):
    """A library's own error standing for a cancellation (as aiomqtt's can)."""


async def test_a_task_that_lost_its_cancellation_is_cancelled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("m2mpay.lifecycle.CANCEL_AGAIN_S", 0.05)
    swallowed: list[int] = []

    async def loses_the_first() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.append(1)  # as Python 3.11's wait_for may, when its result came too
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(loses_the_first())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), 5)
    assert swallowed == [1]
    assert task.cancelled()


async def test_a_loop_that_catches_a_disguised_cancellation_ends() -> None:
    rounds: list[int] = []

    async def reconnecting() -> None:
        while True:
            try:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    raise _Disguised from None
            except _Disguised:
                raise_if_cancelling()
                rounds.append(1)  # a real failure: try again

    task = asyncio.ensure_future(reconnecting())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert rounds == []


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_program_takes_the_environment_first_then_the_usual_paths_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "env").mkdir()
    (tmp_path / "usual").mkdir()
    (tmp_path / "bin").mkdir()
    chosen = _executable(tmp_path / "env" / "tool")
    usual = _executable(tmp_path / "usual" / "tool")
    on_path = _executable(tmp_path / "bin" / "tool")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("TOOL_BINARY", str(chosen))
    assert find_program("tool", "TOOL_BINARY", usual) == chosen
    monkeypatch.delenv("TOOL_BINARY")
    assert find_program("tool", "TOOL_BINARY", usual) == usual
    assert find_program("tool", "TOOL_BINARY", tmp_path / "missing") == on_path


def test_find_program_passes_over_what_is_not_an_executable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "tool"
    plain.write_text("data")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("TOOL_BINARY", str(tmp_path))  # a directory
    assert find_program("tool", "TOOL_BINARY", plain) is None
