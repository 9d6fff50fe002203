"""Cancelled JSON-RPC requests on a real Anvil: a node cancels requests whenever it
stops a task (a follower's poll, a receipt wait), and the calls after them must still
be answered. web3 8.0's own session manager shares one lock among all providers of a
process; a request cancelled while waiting for it left the lock taken, and every later
call of the process hung (web3.py issue 3867)."""

from __future__ import annotations

import asyncio
import random

from m2mpay.chain import AnvilNode, RpcLedger


async def test_requests_cancelled_at_random_points_leave_every_ledger_answering(
    anvil_node: AnvilNode,
) -> None:
    ledgers = [RpcLedger(anvil_node.url) for _ in range(3)]
    for ledger in ledgers:
        await ledger.start()
    chance = random.Random(7)
    try:
        for _ in range(40):
            calls = [asyncio.ensure_future(ledgers[i % 3].block_number()) for i in range(30)]
            # Cancel some before they run, some on their way, some once answered.
            await asyncio.sleep(chance.choice((0, 0, 0.0005, 0.002)))
            for call in calls:
                if chance.random() < 0.5:
                    call.cancel()
            await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        answers = await asyncio.wait_for(
            asyncio.gather(*(ledger.block_number() for ledger in ledgers)), 10
        )
        assert answers == [answers[0]] * 3
        assert answers[0] >= 0
    finally:
        for ledger in ledgers:
            await ledger.stop()
