"""Waiting in tests for what moves on its own (links, meters, buses, the chain)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["eventually", "eventually_async"]


async def eventually(condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Wait until `condition()` holds; fail the test after `timeout` seconds."""

    async def asked() -> bool:
        return condition()

    await eventually_async(asked, timeout=timeout)


async def eventually_async(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 30.0
) -> None:
    """`eventually` for a condition that must ask something (the chain, a store)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"still not so after {timeout:g} s")
        await asyncio.sleep(0.01)
