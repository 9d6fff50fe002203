"""`async with` for what lives between a start and a stop, or an open and a close.

A transport, a ledger, a store, a link: each says only how it starts and stops, and
`async with` stops it however the block ends. What it runs in the background is held
until done (`run_in_background`) and ends with `cancel_and_wait`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, Final, Self

__all__ = [
    "Closable",
    "Openable",
    "Process",
    "Startable",
    "cancel_all",
    "cancel_and_wait",
    "find_program",
    "raise_if_cancelling",
    "run_in_background",
]


def run_in_background(
    tasks: set[asyncio.Task[None]],
    work: Coroutine[Any, Any, None],
    on_failure: Callable[[BaseException], None] | None = None,
) -> asyncio.Task[None]:
    """Run `work` as a task held in `tasks` until it ends (the loop keeps only a weak
    reference: a task nobody holds may be collected before it finishes); `on_failure`
    hears of the exception it ended with, if any."""
    task = asyncio.ensure_future(work)
    tasks.add(task)

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if on_failure is not None and not task.cancelled():
            exc = task.exception()
            if exc is not None:
                on_failure(exc)

    task.add_done_callback(done)
    return task


# How long a cancelled task may take to end before it is cancelled again.
CANCEL_AGAIN_S: Final = 5.0


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel every task given (None: no task) and wait until each has ended, so that
    none still runs once its owner has stopped; a task's failure is raised here.

    A task still running `CANCEL_AGAIN_S` after its cancellation is cancelled again:
    Python 3.11's `asyncio.wait_for` drops a cancellation that arrives together with
    the result it awaited (CPython gh-86296), and aiomqtt awaits every acknowledgement
    with it, so one cancellation can be lost and the task run on for ever."""
    running = [task for task in tasks if task is not None]
    await _cancel_until_ended(running)
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _cancel_until_ended(tasks: list[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    pending = {task for task in tasks if not task.done()}
    while pending:
        _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN_S)
        for task in pending:
            task.cancel()


def raise_if_cancelling() -> None:
    """End the running task if it was asked to: called where a loop catches a library's
    error that may be a cancellation in disguise (aiomqtt turns one that meets a
    connect or a disconnect into `MqttError`), so that the loop does not go on for ever
    and the `cancel_and_wait` of its owner's stop with it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel every task and wait until each has ended, whatever it ended with: a task
    that failed has said so (`run_in_background`), and its owner's stop goes on. A task
    that lost its cancellation is cancelled again, as in `cancel_and_wait`."""
    running = list(tasks)
    await _cancel_until_ended(running)
    await asyncio.gather(*running, return_exceptions=True)


class Closable(ABC):
    """Usable as soon as it is made (a link, a peer link); closed when the block ends."""

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class Openable(Closable):
    """Opened when the block begins (a store) and closed when it ends."""

    @abstractmethod
    async def open(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.open()
        return self


class Startable(ABC):
    """Started when the block begins (a transport, a ledger) and stopped when it ends."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


class Process(ABC):
    """A child process we start and stop from synchronous code (Anvil, a Mosquitto of
    our own): `with` stops it however the block ends."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def find_program(name: str, env: str, *usual: Path) -> Path | None:
    """The executable a `Process` runs: the first executable file of `$env`, the `usual`
    paths and `name` on PATH, in that order (None: none of them is)."""
    explicit = os.environ.get(env)
    candidates = [Path(explicit)] if explicit else []
    candidates.extend(usual)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
