"""The child's side of the JSON-lines processes (`bench.peer`, `bench.bus_peer`): one
command a line on stdin, one answer a line on stdout, as `PeerProcess` drives them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from m2mpay.errors import M2MPayError

__all__ = ["answer_lines", "say"]

Answer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def say(message: dict[str, Any]) -> None:
    """One line on stdout, flushed: the driver waits for it."""
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


async def answer_lines(ready: dict[str, Any], answer: Answer) -> None:
    """Say `ready`, then `answer` each command until `stop` or the end of stdin. A command
    refused answers `{"error": …}` and the process goes on: the driver decides."""
    say(ready)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = orjson.loads(line)
        if command.get("cmd") == "stop":
            return
        try:
            answered = await answer(command)
        except (M2MPayError, ValueError, KeyError, TimeoutError) as exc:
            answered = {"error": f"{type(exc).__name__}: {exc}"}
        say(answered)
