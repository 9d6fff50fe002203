"""Chain faults: the JSON-RPC node a ledger uses restarts (a real Anvil that keeps its
chain in a state file and comes back on its port). A receipt is found across the
outage, and a node follows the chain again: a stale close made while it was away is
still challenged before its deadline, and the channel settles as the proofs say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from m2mpay.chain import (
    AnvilNode,
    ChannelHub,
    OnchainChannel,
    RpcLedger,
)
from m2mpay.chain.devkeys import dev_keys
from m2mpay.channel.outputs import ChannelDefended
from m2mpay.errors import ChannelError, LedgerUnavailable
from tests.chain.anvil_faults import UNIT, anvil_ledger, car_and_charger  # noqa: F401
from tests.waiting import eventually, eventually_async


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[AnvilNode]:
    node = AnvilNode(state=tmp_path / "anvil-state.json")
    node.start()
    yield node
    node.stop()


async def _past(ledger: RpcLedger, block: int) -> bool:
    return await ledger.block_number() > block


async def _restart(anvil: AnvilNode, away_s: float) -> None:
    await asyncio.to_thread(anvil.stop)  # SIGTERM: Anvil writes its state file
    await asyncio.sleep(away_s)
    await asyncio.to_thread(anvil.start)


async def test_a_receipt_is_found_across_a_restart_of_the_rpc_node(
    anvil: AnvilNode, ledger: RpcLedger
) -> None:
    sender, receiver = ledger.dev_accounts()[1:3]
    url = anvil.url
    head = await ledger.block_number()
    tx = await ledger.send(sender, receiver.address, b"", gas=21_000, value=12345)
    # Mined, not only taken: a node's state file keeps its chain, not its pending pool.
    await eventually_async(lambda: _past(ledger, head))
    await asyncio.to_thread(anvil.stop)
    with pytest.raises(LedgerUnavailable):
        await ledger.block_number()
    waiting = asyncio.ensure_future(ledger.wait_for_receipt(tx, timeout=30))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # it rides out the outage
    await asyncio.to_thread(anvil.start)
    assert anvil.url == url
    receipt = await waiting
    assert receipt.succeeded
    assert await ledger.balance(receiver.address) >= 12345


async def test_a_stale_close_during_an_rpc_outage_is_still_challenged(
    anvil: AnvilNode, ledger: RpcLedger, tmp_path: Path
) -> None:
    hub, token, (car, charger) = await car_and_charger(ledger, tmp_path)
    try:
        opened = await car.open_channel(
            charger.address, token.address, 10 * UNIT, challenge_period=60,
            endpoint=charger.endpoint,
        )  # fmt: skip
        for _ in range(3):
            await car.pay(opened.channel_id, UNIT)
        state = car._channels[opened.channel_id]
        await car.stop()
        events = charger.events()
        # The charger's RPC node goes away; the car's owner closes with an old total
        # through another connection as soon as it is back.
        await _restart(anvil, away_s=1.5)
        rogue = RpcLedger(anvil.url, dev_keys=dev_keys())
        await rogue.start()
        onchain = OnchainChannel(
            state.terms.a, state.terms.b, state.terms.asset, state.terms.challenge_period,
            state.terms.nonce, state.deposit_a, state.deposit_b,
        )  # fmt: skip
        await ChannelHub(rogue, hub.address).close(ledger.dev_accounts()[1], onchain, 0, 0, None)
        defended = await asyncio.wait_for(_first_defended(events), 30)
        assert defended.transferred == 3 * UNIT

        def challenged() -> bool:  # on chain, not only sent
            close = charger._channels[opened.channel_id].onchain_close
            return close is not None and close.transferred_a == 3 * UNIT

        await eventually(challenged)
        before = await token.balance_of(charger.address)
        await rogue.advance_time(61 + charger.config.protocol.settle_grace_s)
        await rogue.stop()
        closed = await charger.wait_closed(opened.channel_id, timeout=30)
        assert closed.balance_mine == 3 * UNIT
        assert await token.balance_of(charger.address) == before + 3 * UNIT
    finally:
        await charger.stop()


async def _first_defended(events: AsyncIterator[object]) -> ChannelDefended:
    async for event in events:
        if isinstance(event, ChannelDefended):
            return event
    raise AssertionError("events ended")


async def test_processes_racing_for_one_key_lose_no_transaction(
    anvil: AnvilNode, ledger: RpcLedger
) -> None:
    # Each ledger stands for a process: each keeps its own idea of the next nonce. Two
    # that lost a nonce to each other race again in step, and with four the same one
    # could lose every try (it did, once in a full run, with two).
    others = [RpcLedger(anvil.url, dev_keys=dev_keys()) for _ in range(3)]
    for other in others:
        await other.start()
    sender, receiver = ledger.dev_accounts()[3], ledger.dev_accounts()[4].address
    before = await ledger.balance(receiver)
    values = (1, 1_000, 1_000_000, 1_000_000_000)
    try:
        sends = [
            side.send(sender, receiver, b"", gas=21_000, value=value)
            for _ in range(10)
            for value, side in zip(values, (ledger, *others), strict=True)
        ]
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
    finally:
        for other in others:
            await other.stop()
    sent = [tx for tx in outcomes if isinstance(tx, bytes)]
    failed = [repr(outcome) for outcome in outcomes if not isinstance(outcome, bytes)]
    assert not failed, failed  # each retried till it landed
    receipts = [await ledger.wait_for_receipt(tx, timeout=30) for tx in sent]
    assert all(r.succeeded for r in receipts)
    assert await ledger.balance(receiver) == before + 10 * sum(values)


async def test_an_open_while_the_rpc_node_is_away_moves_nothing_and_works_once_back(
    anvil: AnvilNode, ledger: RpcLedger, tmp_path: Path
) -> None:
    _, token, (car, charger) = await car_and_charger(ledger, tmp_path)
    try:
        before = await token.balance_of(car.address)
        await asyncio.to_thread(anvil.stop)
        with pytest.raises(ChannelError) as failed:
            await car.open_channel(
                charger.address, token.address, 10 * UNIT, endpoint=charger.endpoint
            )
        assert failed.value.code == "expired"  # the open transaction never reached a chain
        await asyncio.to_thread(anvil.start)
        assert await token.balance_of(car.address) == before
        opened = await car.open_channel(
            charger.address, token.address, 10 * UNIT, endpoint=charger.endpoint
        )
        await car.pay(opened.channel_id, UNIT)
        assert await token.balance_of(car.address) == before - 10 * UNIT
        assert charger.channel(opened.channel_id).received_total == UNIT
    finally:
        for node in (car, charger):
            await node.stop()
