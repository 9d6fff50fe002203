"""Chain reorganisations on a real Anvil (`anvil_reorg` replaces the newest blocks with
empty ones and does not put their transactions back in its pool).

The follower retracts what it delivered from dropped blocks, our dropped transactions
are sent again, and the nodes' channels converge to the chain: a dropped deposit comes
back, a dropped close is made again and settles as the newest proofs say, a dropped
challenge still lands before the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from m2mpay.chain import (
    AnvilNode,
    ChannelHub,
    OnchainChannel,
    RpcLedger,
    TokenContract,
    deploy_contracts,
)
from m2mpay.chain.devkeys import dev_keys
from m2mpay.chain.events import ChannelChallenged
from m2mpay.chain.forks import SentTransactions
from m2mpay.chain.ledger import LogEntry
from m2mpay.channel.outputs import ChainReorganised, ChannelEvent
from m2mpay.channel.state import Phase
from m2mpay.crypto import Address
from m2mpay.node import Node
from tests.chain.anvil_faults import UNIT, anvil_ledger, car_and_charger, reorg_from  # noqa: F401
from tests.waiting import eventually, eventually_async


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    node = AnvilNode()
    node.start()
    yield node
    node.stop()


async def _first(events: AsyncIterator[ChannelEvent], kind: type[Any]) -> Any:
    async for event in events:
        if isinstance(event, kind):
            return event
    raise AssertionError("events ended")


async def _rewinds(*subscriptions: AsyncIterator[ChannelEvent]) -> list[Any]:
    """Each node's `ChainReorganised`: until a node has rewound, its view of the
    channel is still the one before the reorganisation, however right it looks."""
    return await asyncio.wait_for(
        asyncio.gather(*(_first(events, ChainReorganised) for events in subscriptions)), 30
    )


async def _stop(*nodes: Node) -> None:
    for node in nodes:
        await node.stop()


# -- the follower


async def test_the_follower_retracts_logs_of_dropped_blocks_and_follows_the_new_chain(
    ledger: RpcLedger,
) -> None:
    keys = ledger.dev_accounts()
    _, _, token = await deploy_contracts(ledger, keys[0], mint={keys[1].address: 100})
    follower = ledger.subscribe(address=token.address, from_block=await ledger.block_number() + 1)
    receipt = await token.transfer(keys[1], keys[2].address, 7)
    seen = await asyncio.wait_for(anext(follower), 10)
    assert (seen.tx_hash, seen.removed) == (receipt.tx_hash, False)
    assert seen.block_hash

    await reorg_from(ledger, receipt.block_number)
    retracted: LogEntry = await asyncio.wait_for(anext(follower), 10)
    assert retracted.removed
    assert (retracted.tx_hash, retracted.block_hash) == (seen.tx_hash, seen.block_hash)
    # The transfer was ours: sent again as it was, it lands once in the new chain.
    again = await asyncio.wait_for(anext(follower), 10)
    assert (again.tx_hash, again.removed) == (seen.tx_hash, False)
    assert again.block_hash != seen.block_hash
    assert await token.balance_of(keys[2].address) == 7
    await follower.aclose()  # type: ignore[attr-defined]


# -- the nodes


async def test_a_dropped_deposit_vanishes_from_the_view_then_lands_again(
    ledger: RpcLedger, tmp_path: Path
) -> None:
    _, token, (car, charger) = await car_and_charger(ledger, tmp_path)
    try:
        before = await token.balance_of(car.address)
        opened = await car.open_channel(
            charger.address, token.address, 10 * UNIT, endpoint=charger.endpoint
        )
        channel = opened.channel_id
        await car.pay(channel, UNIT)
        subscriptions = (car.events(), charger.events())
        topped = await car.top_up(channel, 5 * UNIT)
        assert topped.deposit_mine == 15 * UNIT
        await eventually(lambda: charger.channel(channel).deposit_peer == 15 * UNIT)
        deposit_block = await ledger.block_number()

        await reorg_from(ledger, deposit_block)
        for rewound in await _rewinds(*subscriptions):
            assert (rewound.phase, rewound.deposit_a) == ("open", 10 * UNIT)
        # The deposit was sent again and the chain holds it once: the view converges.
        for node, mine in ((car, True), (charger, False)):
            await eventually(
                lambda n=node, m=mine: (  # type: ignore[misc]
                    (n.channel(channel).deposit_mine if m else n.channel(channel).deposit_peer)
                    == 15 * UNIT
                )
            )
        assert await token.balance_of(car.address) == before - 15 * UNIT
        await car.pay(channel, 12 * UNIT)  # the deposit is spendable again
        closed = await car.close(channel)
        assert closed.phase is Phase.CLOSED
        assert await token.balance_of(car.address) == before - 13 * UNIT
    finally:
        await _stop(car, charger)


async def test_a_dropped_close_is_made_again_and_settles_as_the_newest_proofs_say(
    ledger: RpcLedger, tmp_path: Path
) -> None:
    _, token, (car, charger) = await car_and_charger(ledger, tmp_path)
    try:
        opened = await car.open_channel(
            charger.address, token.address, 10 * UNIT, challenge_period=60,
            endpoint=charger.endpoint,
        )  # fmt: skip
        channel = opened.channel_id
        for _ in range(3):
            await car.pay(channel, UNIT)
        before = await token.balance_of(charger.address)
        subscriptions = (car.events(), charger.events())
        disputed = await charger.force_close(channel)
        assert disputed.phase is Phase.DISPUTED
        await eventually(lambda: car.channel(channel).phase is Phase.DISPUTED)
        close_block = await ledger.block_number()

        await reorg_from(ledger, close_block)
        for rewound in await _rewinds(*subscriptions):
            assert rewound.phase == "open"  # the closing view went back with the chain
        for node in (car, charger):
            await eventually(lambda n=node: n.channel(channel).phase is Phase.DISPUTED)  # type: ignore[misc]
        close = charger._channels[channel].onchain_close
        assert close is not None
        assert (close.transferred_a, close.transferred_b) == (3 * UNIT, 0)

        await ledger.advance_time(61 + charger.config.protocol.settle_grace_s)
        closed = await charger.wait_closed(channel, timeout=30)
        assert (closed.balance_mine, closed.balance_peer) == (3 * UNIT, 7 * UNIT)
        assert await token.balance_of(charger.address) == before + 3 * UNIT
    finally:
        await _stop(car, charger)


async def test_a_dropped_challenge_still_lands_before_the_deadline(
    ledger: RpcLedger, anvil: AnvilNode, tmp_path: Path
) -> None:
    hub, token, (car, charger) = await car_and_charger(ledger, tmp_path)
    try:
        opened = await car.open_channel(
            charger.address, token.address, 10 * UNIT, challenge_period=60,
            endpoint=charger.endpoint,
        )  # fmt: skip
        channel = opened.channel_id
        for _ in range(3):
            await car.pay(channel, UNIT)
        state = car._channels[channel]
        await car.stop()
        # The car's owner closes with a stale total through another connection.
        rogue = RpcLedger(anvil.url, dev_keys=dev_keys())
        await rogue.start()
        onchain = OnchainChannel(
            state.terms.a, state.terms.b, state.terms.asset, state.terms.challenge_period,
            state.terms.nonce, state.deposit_a, state.deposit_b,
        )  # fmt: skip
        await ChannelHub(rogue, hub.address).close(ledger.dev_accounts()[1], onchain, 0, 0, None)

        def challenged() -> bool:
            close = charger._channels[channel].onchain_close
            return close is not None and close.transferred_a == 3 * UNIT

        await eventually(challenged)
        challenge_block = next(
            e.block_number for e in await hub.events(0) if isinstance(e, ChannelChallenged)
        )
        deadline = charger._channels[channel].onchain_close.deadline  # type: ignore[union-attr]
        events = charger.events()
        # As if the process that sent the challenge had restarted: nothing to send again,
        # the channel machine itself must challenge again.
        ledger._sent = SentTransactions()

        await reorg_from(ledger, challenge_block)
        [rewound] = await _rewinds(events)
        assert rewound.phase == "disputed"
        await eventually(challenged)
        landed = await ledger.block_timestamp()
        assert landed <= deadline

        before = await token.balance_of(charger.address)
        await rogue.advance_time(61 + charger.config.protocol.settle_grace_s)
        await rogue.stop()
        closed = await charger.wait_closed(channel, timeout=30)
        assert closed.balance_mine == 3 * UNIT
        assert await token.balance_of(charger.address) == before + 3 * UNIT
    finally:
        await charger.stop()


async def _head_moves(ledger: RpcLedger, block: int) -> bool:
    return await ledger.block_number() > block


async def test_the_node_cursor_goes_back_to_the_rewound_block(
    ledger: RpcLedger, tmp_path: Path
) -> None:
    _, token, (car, charger) = await car_and_charger(ledger, tmp_path)
    try:
        opened = await car.open_channel(
            charger.address, token.address, 10 * UNIT, endpoint=charger.endpoint
        )
        events = charger.events()
        await car.top_up(opened.channel_id, UNIT)
        block = await ledger.block_number()
        await eventually(lambda: charger._follower.cursor >= block - 1)
        await reorg_from(ledger, block)
        await asyncio.wait_for(_first(events, ChainReorganised), 10)
        assert charger._follower.cursor <= block
        await eventually_async(lambda: _head_moves(ledger, block))
        assert charger.channel(opened.channel_id).phase is Phase.OPEN
    finally:
        await _stop(car, charger)


async def test_a_dropped_transaction_whose_nonce_another_took_is_sent_under_a_new_one(
    ledger: RpcLedger, anvil: AnvilNode
) -> None:
    keys = ledger.dev_accounts()
    _, _, token = await deploy_contracts(ledger, keys[0], mint={keys[1].address: 100})
    receipt = await token.transfer(keys[1], keys[2].address, 7)
    await reorg_from(ledger, receipt.block_number)
    # Before this ledger sends it again, another process with the same key takes its
    # nonce in the new chain: the bytes can never be mined now.
    other = RpcLedger(anvil.url, dev_keys=dev_keys())
    await other.start()
    try:
        taken = await TokenContract(other, token.address).transfer(keys[1], keys[3].address, 5)
    finally:
        await other.stop()
    assert await token.balance_of(keys[2].address) == 0

    await ledger.resend_dropped(receipt.block_number - 1)
    await eventually_async(lambda: _balance_is(token, keys[2].address, 7))
    assert await token.balance_of(keys[3].address) == 5
    assert taken.tx_hash != receipt.tx_hash
    assert await token.balance_of(keys[1].address) == 100 - 7 - 5


async def _balance_is(token: TokenContract, owner: Address, amount: int) -> bool:
    return await token.balance_of(owner) == amount


async def test_a_transaction_sent_again_then_replaced_in_the_pool_is_sent_under_a_new_nonce(
    ledger: RpcLedger, anvil: AnvilNode
) -> None:
    """Nobody waits on a transaction a reorganisation made us send again: the ledger
    follows it itself, so a nonce another process takes from it in the pool is noticed."""
    keys = ledger.dev_accounts()
    _, _, token = await deploy_contracts(ledger, keys[0], mint={keys[1].address: 100})
    receipt = await token.transfer(keys[1], keys[2].address, 7)
    await reorg_from(ledger, receipt.block_number)
    await _rpc(ledger, "evm_setAutomine", [False])
    try:
        await ledger.resend_dropped(receipt.block_number - 1)
        pending = await ledger.w3.eth.get_transaction(receipt.tx_hash)  # type: ignore[arg-type]
        assert pending["blockNumber"] is None  # in the pool again
        # Another process with the same key outbids it for its nonce, in the pool.
        rival = Account.sign_transaction(
            {
                "chainId": ledger.chain_id,
                "nonce": pending["nonce"],
                "to": keys[3].address.checksum,
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 3 * pending["maxFeePerGas"],
                "maxPriorityFeePerGas": 3 * pending["maxPriorityFeePerGas"],
            },
            keys[1].secret,
        )
        await ledger.w3.eth.send_raw_transaction(rival.raw_transaction)
        await _rpc(ledger, "evm_mine", [])
    finally:
        await _rpc(ledger, "evm_setAutomine", [True])
    assert await ledger.w3.eth.get_transaction_count(keys[1].address.checksum) == (
        pending["nonce"] + 1
    )
    await eventually_async(lambda: _balance_is(token, keys[2].address, 7))
    assert await token.balance_of(keys[1].address) == 100 - 7


async def _rpc(ledger: RpcLedger, method: str, params: list[Any]) -> None:
    answer: dict[str, Any] = await ledger.w3.provider.make_request(method, params)
    assert "error" not in answer, answer
