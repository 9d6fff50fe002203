"""The embedded EVM runs on the event loop: sending and mining must let others run.

eth-tester executes and mines a transaction without awaiting anything, so a
burst of transactions used to hold the loop for its whole length and starve,
among others, the JSON-RPC clients the hosting process serves.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from m2mpay.chain import EmbeddedLedger
from m2mpay.chain.rpc_server import EmbeddedLedgerServer


@pytest.fixture
async def embedded() -> AsyncIterator[EmbeddedLedger]:
    async with EmbeddedLedger() as ledger:
        yield ledger


async def _interleaving(work: Callable[[list[str]], Awaitable[None]]) -> list[str]:
    """What `work` and a coroutine that only yields did, in the order they did it."""
    events: list[str] = []
    done = False

    async def other() -> None:
        while not done:
            events.append("other")
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    events.clear()
    try:
        await work(events)
    finally:
        done = True
        await task
    return events


def _other_ran_between_each(events: list[str], step: str) -> bool:
    steps = [i for i, event in enumerate(events) if event == step]
    return all("other" in events[a + 1 : b] for a, b in itertools.pairwise(steps))


async def test_other_coroutines_run_between_transactions_sent_back_to_back(
    embedded: EmbeddedLedger,
) -> None:
    sender = embedded.dev_accounts()[5]

    async def burst(events: list[str]) -> None:
        for _ in range(30):
            await embedded.transact(sender, sender.address, b"", gas=21_000)
            events.append("tx")

    events = await _interleaving(burst)
    assert events.count("tx") == 30
    assert _other_ran_between_each(events, "tx")


async def test_other_coroutines_run_between_bare_sends(embedded: EmbeddedLedger) -> None:
    """`send` alone (no receipt wait, which might sleep) yields too."""
    sender = embedded.dev_accounts()[6]

    async def burst(events: list[str]) -> None:
        for _ in range(10):
            await embedded.send(sender, sender.address, b"", gas=21_000)
            events.append("send")

    events = await _interleaving(burst)
    assert _other_ran_between_each(events, "send")


async def test_other_coroutines_run_between_blocks_mined_by_advance_time(
    embedded: EmbeddedLedger,
) -> None:
    async def burst(events: list[str]) -> None:
        for _ in range(10):
            await embedded.advance_time(1)
            events.append("mine")

    events = await _interleaving(burst)
    assert _other_ran_between_each(events, "mine")


async def test_a_json_rpc_batch_lets_the_host_run_between_its_items(
    embedded: EmbeddedLedger,
) -> None:
    """A client's batch of 20 evm_mine calls: the host sees every block come, one by one."""
    server = EmbeddedLedgerServer(embedded)
    url = await server.start()
    start = await embedded.block_number()
    seen: set[int] = set()
    done = False

    async def host_work() -> None:
        while not done:
            seen.add(await embedded.block_number())
            await asyncio.sleep(0)

    task = asyncio.create_task(host_work())
    try:
        batch = [{"jsonrpc": "2.0", "id": n, "method": "evm_mine"} for n in range(20)]
        async with aiohttp.ClientSession() as session, session.post(url, json=batch) as response:
            answers = await response.json()
        assert len(answers) == 20
        assert all("error" not in answer for answer in answers)
    finally:
        done = True
        await task
        await server.stop()
    assert await embedded.block_number() == start + 20
    assert set(range(start + 1, start + 20)) <= seen
