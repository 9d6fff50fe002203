"""A reorganisation while a node is stopped, on a real Anvil (`anvil_reorg` replaces the
newest blocks with empty ones and does not put their transactions back in its pool).

The node stores block hashes with its cursor; started again, it finds the blocks it
had read replaced, sets its channels back to the chain's view before the fork point
and reads on from there: a dropped deposit is sent again if this process still holds
its signed bytes, or leaves the view otherwise; a dropped close of its own is made
again and settles at the newest proofs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from m2mpay.chain import AnvilNode, RpcLedger
from m2mpay.chain.events import ChannelClosing
from m2mpay.chain.forks import SentTransactions
from m2mpay.channel.state import Phase
from m2mpay.node import LedgerAccess, Node, NodeConfig
from m2mpay.store import open_store
from m2mpay.wire import WebSocketTransport
from tests.chain.anvil_faults import UNIT, anvil_ledger, car_and_charger, reorg_from  # noqa: F401
from tests.waiting import eventually, eventually_async


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    node = AnvilNode()
    node.start()
    yield node
    node.stop()


async def _started_again(ledger: RpcLedger, node: Node, tmp_path: Path) -> Node:
    """The node of `car_and_charger` again, from its store, as a new process would be."""
    index = 1 if node.address == ledger.dev_accounts()[1].address else 2
    again = Node(
        ledger.dev_accounts()[index],
        LedgerAccess(ledger, node.chain.hub, ledger.dev_accounts()[index]),
        open_store(tmp_path / f"node{index}.sqlite3"),
        transport=WebSocketTransport(),
        config=NodeConfig(tick_interval_s=0.05),
    )
    await again.start()
    await again.caught_up.wait()
    return again


@pytest.mark.parametrize("bytes_kept", [True, False], ids=["resent", "lost"])
async def test_a_deposit_dropped_while_stopped_is_sent_again_or_leaves_the_view(
    ledger: RpcLedger, tmp_path: Path, bytes_kept: bool
) -> None:
    _, token, (car, charger) = await car_and_charger(ledger, tmp_path)
    started: list[Node] = []
    try:
        before = await token.balance_of(car.address)
        opened = await car.open_channel(
            charger.address, token.address, 10 * UNIT, endpoint=charger.endpoint
        )
        channel = opened.channel_id
        await car.pay(channel, UNIT)
        await car.top_up(channel, 5 * UNIT)
        deposit_block = await ledger.block_number()
        for node in (car, charger):
            await eventually(lambda n=node: n._follower.cursor >= deposit_block - 1)  # type: ignore[misc]
            await eventually(lambda n=node: n._channels[channel].deposit_a == 15 * UNIT)  # type: ignore[misc]
            await node.stop()
        if not bytes_kept:
            ledger._sent = SentTransactions()  # the process that sent it is gone

        await reorg_from(ledger, deposit_block)
        expected = 15 * UNIT if bytes_kept else 10 * UNIT
        for node in (car, charger):
            started.append(again := await _started_again(ledger, node, tmp_path))
            await eventually(lambda n=again: n._channels[channel].deposit_a == expected)  # type: ignore[misc]
            assert again.channel(channel).phase is Phase.OPEN
        # The chain holds the deposit once, or not at all: the views say what it holds.
        assert await token.balance_of(car.address) == before - expected
    finally:
        for node in (car, charger, *started):
            await node.stop()


async def test_a_close_dropped_while_stopped_is_made_again_and_settles_at_the_newest_proofs(
    ledger: RpcLedger, tmp_path: Path
) -> None:
    hub, token, (car, charger) = await car_and_charger(ledger, tmp_path)
    started: list[Node] = []
    try:
        opened = await car.open_channel(
            charger.address, token.address, 10 * UNIT, challenge_period=60,
            endpoint=charger.endpoint,
        )  # fmt: skip
        channel = opened.channel_id
        for _ in range(3):
            await car.pay(channel, UNIT)
        disputed = await charger.force_close(channel)
        assert disputed.phase is Phase.DISPUTED
        close_block = await ledger.block_number()
        await eventually(lambda: charger._follower.cursor >= close_block - 1)
        for node in (car, charger):
            await node.stop()
        ledger._sent = SentTransactions()  # only the channel machine can close again

        await reorg_from(ledger, close_block)
        before = await token.balance_of(charger.address)
        again = await _started_again(ledger, charger, tmp_path)
        started.append(again)

        async def closed_on_chain() -> bool:
            return any(
                isinstance(e, ChannelClosing)
                and (e.transferred_a, e.transferred_b) == (3 * UNIT, 0)
                for e in await hub.events(close_block)
            )

        await eventually_async(closed_on_chain)
        await eventually(lambda: again.channel(channel).phase is Phase.DISPUTED)
        await ledger.advance_time(61 + again.config.protocol.settle_grace_s)
        closed = await again.wait_closed(channel, timeout=30)
        assert (closed.balance_mine, closed.balance_peer) == (3 * UNIT, 7 * UNIT)
        assert await token.balance_of(charger.address) == before + 3 * UNIT
    finally:
        for node in (car, charger, *started):
            await node.stop()
