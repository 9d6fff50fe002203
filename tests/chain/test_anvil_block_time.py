"""An Anvil with a block time mines as a real chain does: blocks come with no
transaction, and a transaction waits for the next one (what `m2mpay bench paywall
--anvil --block-time` measures the `exact` scheme against). Without one, Anvil mines a
block a transaction and none otherwise."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.chain import AnvilNode, RpcLedger
from m2mpay.chain.devkeys import dev_keys
from tests.cli.conftest import cli
from tests.waiting import eventually_async


async def _head(url: str) -> int:
    async with RpcLedger(url, dev_keys=dev_keys()) as ledger:
        return await ledger.block_number()


async def test_a_block_time_mines_blocks_with_no_transaction() -> None:
    timed = AnvilNode(block_time=0.5)
    automine = AnvilNode()
    timed.start()
    automine.start()
    try:
        first = await _head(timed.url)
        idle = await _head(automine.url)

        async def grown() -> bool:
            return await _head(timed.url) >= first + 2

        await eventually_async(grown, timeout=20)
        await asyncio.sleep(1.0)  # as long as two blocks of the other: still none here
        assert await _head(automine.url) == idle
    finally:
        timed.stop()
        automine.stop()


def test_a_block_time_is_positive_and_goes_with_anvil() -> None:
    with pytest.raises(ValueError, match="more than 0"):
        AnvilNode(block_time=0)
    refused = cli("bench", "paywall", "--block-time", "1", "--requests", "10")
    assert refused.exit_code != 0
    assert "--block-time goes with --anvil" in refused.output
