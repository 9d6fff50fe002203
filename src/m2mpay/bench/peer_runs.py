"""The timed runs a benchmark peer process performs on command (`m2mpay.bench.peer`):
a stream of payments, their latency one at a time, channels opened many at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from m2mpay.crypto import Address
from m2mpay.node import Node, PaymentWait

__all__ = ["latency", "open_many", "stream"]


async def stream(node: Node, command: dict[str, Any]) -> dict[str, Any]:
    """Send `count` payments as fast as the window allows; latency is pay → durable ack."""
    channel = bytes.fromhex(command["channel"][2:])
    count = int(command["count"])
    amount = int(command.get("amount", 1))
    latencies: list[float] = []
    all_acknowledged = asyncio.Event()
    clock = time.perf_counter

    def on_ack(sent_at: float) -> Callable[[asyncio.Future[None]], None]:
        def record(_: asyncio.Future[None]) -> None:
            latencies.append(clock() - sent_at)
            if len(latencies) == count:
                all_acknowledged.set()

        return record

    started = clock()
    for _ in range(count):
        sent_at = clock()
        handle = await node.pay(channel, amount, wait=PaymentWait.QUEUED)
        handle.acknowledged.add_done_callback(on_ack(sent_at))
    await asyncio.wait_for(all_acknowledged.wait(), 120)
    elapsed = clock() - started
    latencies.sort()
    return {
        "payments": count,
        "seconds": elapsed,
        "payments_per_s": count / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def latency(node: Node, command: dict[str, Any]) -> dict[str, Any]:
    """One payment at a time, each awaited until acknowledged: latency without queueing."""
    channel = bytes.fromhex(command["channel"][2:])
    amount = int(command.get("amount", 1))
    samples = []
    for _ in range(int(command["count"])):
        started = time.perf_counter()
        await node.pay(channel, amount)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return {
        "p50_ms": samples[len(samples) // 2] * 1000,
        "p99_ms": samples[int(len(samples) * 0.99)] * 1000,
    }


async def open_many(node: Node, command: dict[str, Any]) -> dict[str, Any]:
    """Open `count` channels to one peer, `concurrency` proposals at a time."""
    count = int(command["count"])
    gate = asyncio.Semaphore(int(command.get("concurrency", 32)))
    peer, asset = Address(command["peer"]), Address(command["asset"])
    deposit = int(command["deposit"])
    started = time.perf_counter()

    async def open_one() -> None:
        async with gate:
            await node.open_channel(peer, asset, deposit, endpoint=command.get("endpoint"))

    await asyncio.gather(*(open_one() for _ in range(count)))
    return {"opened": count, "seconds": time.perf_counter() - started}
