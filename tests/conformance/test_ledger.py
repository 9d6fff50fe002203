"""The `Ledger` interface behaves the same on the embedded EVM and on Anvil."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from m2mpay.chain import EmbeddedLedger, Ledger, LogEntry, RpcLedger, dev_keys
from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.rpc_server import EmbeddedLedgerServer
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import LedgerError, TransactionReverted
from tests.conftest import UNIT, World


async def test_chain_id_and_caip2(ledger: Ledger) -> None:
    assert ledger.chain_id in (1337, 31337)
    assert ledger.caip2 == f"eip155:{ledger.chain_id}"


async def test_dev_accounts_are_funded_and_shared(ledger: Ledger) -> None:
    keys = ledger.dev_accounts()
    assert len(keys) >= 5
    assert str(keys[0].address) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert await ledger.balance(keys[0].address) > 100 * UNIT


async def test_native_transfer_mines_a_block_with_receipt(ledger: Ledger) -> None:
    sender = ledger.dev_accounts()[5]
    receiver = PrivateKey.generate().address
    head = await ledger.block_number()
    receipt = await ledger.transact(sender, receiver, b"", gas=21_000, value=12345)
    assert receipt.succeeded
    assert receipt.gas_used == 21_000
    assert receipt.block_number == head + 1
    assert await ledger.balance(receiver) == 12345


async def test_consecutive_sends_need_no_waiting_between(ledger: Ledger) -> None:
    """Nonces are tracked locally: several sends in flight from one account all land."""
    sender = ledger.dev_accounts()[6]
    receiver = PrivateKey.generate().address
    hashes = [await ledger.send(sender, receiver, b"", gas=21_000, value=1) for _ in range(5)]
    receipts = [await ledger.wait_for_receipt(h) for h in hashes]
    assert all(r.succeeded for r in receipts)
    assert await ledger.balance(receiver) == 5


async def test_concurrent_sends_from_one_account_get_distinct_nonces(ledger: Ledger) -> None:
    sender = ledger.dev_accounts()[7]
    receiver = PrivateKey.generate().address
    hashes = await asyncio.gather(
        *(ledger.send(sender, receiver, b"", gas=21_000, value=1) for _ in range(8))
    )
    assert len(set(hashes)) == 8
    for tx_hash in hashes:
        assert (await ledger.wait_for_receipt(tx_hash)).succeeded
    assert await ledger.balance(receiver) == 8


async def test_gas_limit_must_be_explicit(ledger: Ledger) -> None:
    sender = ledger.dev_accounts()[5]
    with pytest.raises(LedgerError, match="explicit positive gas limit"):
        await ledger.send(sender, sender.address, b"", gas=0)


async def test_reverted_transaction_raises_with_the_contract_reason(world: World) -> None:
    abi = load_artifact("Token").interface
    stranger = world.carol
    with pytest.raises(TransactionReverted, match="Token: only owner can mint") as caught:
        await world.ledger.transact(
            stranger,
            world.token.address,
            abi.encode_call("mint", stranger.address, 1),
            gas=90_000,
        )
    assert caught.value.tx_hash is not None
    assert caught.value.gas_used > 21_000


async def test_out_of_gas_is_reported_as_such(world: World) -> None:
    abi = load_artifact("Token").interface
    with pytest.raises(TransactionReverted, match="out of gas"):
        await world.ledger.transact(
            world.owner,
            world.token.address,
            abi.encode_call("mint", world.carol.address, 1),
            gas=30_000,
        )


async def test_call_reports_revert_reason(world: World) -> None:
    abi = load_artifact("Token").interface
    with pytest.raises(TransactionReverted, match="Token: only owner can mint"):
        await world.ledger.call(
            world.token.address,
            abi.encode_call("mint", world.carol.address, 1),
            sender=world.carol.address,
        )


async def test_deployed_code_is_the_artifact_runtime(world: World) -> None:
    code = await world.ledger.code(world.hub.address)
    assert code.startswith(load_artifact("ChannelHub").runtime_bytecode)
    assert await world.ledger.code(PrivateKey.generate().address) == b""


async def test_advance_time_moves_the_chain_clock(ledger: Ledger) -> None:
    before = await ledger.block_timestamp()
    head = await ledger.block_number()
    await ledger.advance_time(3600)
    assert await ledger.block_number() == head + 1
    after = await ledger.block_timestamp()
    assert 3600 <= after - before < 3600 + 30
    with pytest.raises(ValueError, match="forward"):
        await ledger.advance_time(-1)


async def test_block_clock_follows_wall_clock_under_load(ledger: Ledger) -> None:
    """Twenty blocks in a burst must not push the chain clock twenty seconds ahead."""
    sender = ledger.dev_accounts()[8]
    start = await ledger.block_timestamp()
    for _ in range(20):
        await ledger.transact(sender, sender.address, b"", gas=21_000)
    assert await ledger.block_timestamp() - start < 10


async def test_get_logs_filters_by_address_topic_and_range(world: World) -> None:
    transfer = load_artifact("Token").interface.event_topic("Transfer")
    first = await world.token.transfer(world.alice, world.carol.address, 5)
    second = await world.token.transfer(world.bob, world.carol.address, 7)
    logs = await world.ledger.get_logs(
        address=world.token.address, from_block=first.block_number, topics=[transfer]
    )
    assert [log.block_number for log in logs] == [first.block_number, second.block_number]
    only_bob = await world.ledger.get_logs(
        address=world.token.address,
        from_block=first.block_number,
        topics=[transfer, bytes(12) + world.bob.address],
    )
    assert [log.tx_hash for log in only_bob] == [second.tx_hash]
    none = await world.ledger.get_logs(address=Address(b"\x99" * 20), from_block=first.block_number)
    assert none == []


async def test_subscribe_delivers_new_and_missed_logs_in_order(world: World) -> None:
    start = await world.ledger.block_number() + 1
    received: list[LogEntry] = []

    async def consume() -> None:
        async for log in world.ledger.subscribe(address=world.token.address, from_block=start):
            received.append(log)
            if len(received) == 3:
                return

    # One transfer is mined before anyone listens: it must still be delivered.
    await world.token.transfer(world.alice, world.carol.address, 1)
    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await world.token.transfer(world.alice, world.carol.address, 2)
    await world.token.transfer(world.alice, world.carol.address, 3)
    await asyncio.wait_for(task, timeout=10)
    amounts = [int.from_bytes(log.data, "big") for log in received]
    assert amounts == [1, 2, 3]
    assert [log.block_number for log in received] == sorted(log.block_number for log in received)
    # Nothing reorganised: no log is retracted, and each names its block as the chain does.
    assert not any(log.removed for log in received)
    for log in received:
        chain_view = await world.ledger.get_logs(
            address=world.token.address, from_block=log.block_number, to_block=log.block_number
        )
        assert log.block_hash
        assert [entry.block_hash for entry in chain_view] == [log.block_hash]


async def test_get_logs_topic_alternatives_wildcards_and_several_addresses(world: World) -> None:
    """The filter forms a watcher or a node may use mean the same on every ledger."""
    token_abi = load_artifact("Token").interface
    transfer, approval = token_abi.event_topic("Transfer"), token_abi.event_topic("Approval")
    opened = load_artifact("ChannelHub").interface.event_topic("ChannelOpened")
    first = await world.token.transfer(world.alice, world.carol.address, 5)
    await world.token.transfer(world.bob, world.alice.address, 6)
    await world.token.transfer(world.carol, world.bob.address, 7)
    channel = await world.channel(UNIT)
    last = await world.ledger.block_number()

    async def amounts(topics: list[bytes | list[bytes] | None], to_block: int = last) -> list[int]:
        logs = await world.ledger.get_logs(
            address=world.token.address,
            from_block=first.block_number,
            to_block=to_block,
            topics=topics,
        )
        return [int.from_bytes(log.data, "big") for log in logs]

    def party(key: PrivateKey) -> bytes:
        return bytes(12) + key.address

    # The channel's funding moved UNIT from alice to the hub (and set an allowance).
    assert await amounts([transfer]) == [5, 6, 7, UNIT]
    assert await amounts([transfer, None, [party(world.alice), party(world.bob)]]) == [6, 7]
    assert await amounts([transfer, [party(world.bob), party(world.carol)]]) == [6, 7]
    assert await amounts([transfer], to_block=first.block_number + 1) == [5, 6]
    assert len(await amounts([[transfer, approval], party(world.alice)])) >= 2
    # (Trailing wildcards past a log's last topic differ between nodes: geth and
    # eth-tester match nothing, Anvil ignores them. Nothing here relies on either.)

    both = await world.ledger.get_logs(
        address=[world.hub.address, world.token.address],
        from_block=first.block_number,
        topics=[[opened, transfer]],
    )
    assert [log.address for log in both].count(world.hub.address) == 1
    assert [(log.block_number, log.log_index) for log in both] == sorted(
        (log.block_number, log.log_index) for log in both
    )
    opened_log = next(log for log in both if log.address == world.hub.address)
    assert opened_log.topics[1] == channel.id
    assert len({log.log_index for log in both if log.block_number == opened_log.block_number}) == (
        len([log for log in both if log.block_number == opened_log.block_number])
    )


@pytest.mark.parametrize("kind", ["anvil", "embedded-rpc"])
async def test_a_key_shared_by_two_clients_recovers_from_a_stale_nonce(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Two processes sending with one key (the dev faucet, say): each client's cached
    nonce goes stale when the other sends, and the next send must still land."""
    async with contextlib.AsyncExitStack() as stack:
        if kind == "anvil":
            url = request.getfixturevalue("anvil_node").url
        else:
            server = EmbeddedLedgerServer(await stack.enter_async_context(EmbeddedLedger()))
            url = await server.start()
            stack.push_async_callback(server.stop)
        first = await stack.enter_async_context(RpcLedger(url, dev_keys=dev_keys()))
        second = await stack.enter_async_context(RpcLedger(url, dev_keys=dev_keys()))
        sender = first.dev_accounts()[8]
        receiver = PrivateKey.generate().address
        for client in (first, second, first, second):
            tx_hash = await client.send(sender, receiver, b"", gas=21_000, value=1)
            assert (await client.wait_for_receipt(tx_hash)).succeeded
        assert await first.balance(receiver) == 4


async def test_a_block_by_number_and_by_hash_lists_its_transactions(world: World) -> None:
    ledger = world.ledger
    receipt = await world.token.transfer(world.alice, world.carol.address, 7)
    by_number = await ledger.block(receipt.block_number)
    assert by_number is not None
    assert by_number.number == receipt.block_number
    assert by_number.transactions == (receipt.tx_hash,)
    assert by_number.gas_used == receipt.gas_used <= by_number.gas_limit
    assert by_number.timestamp == await ledger.block_timestamp(receipt.block_number)
    assert by_number.hash == await ledger.block_hash(receipt.block_number)
    parent = await ledger.block(receipt.block_number - 1)
    assert parent is not None
    assert by_number.parent_hash == parent.hash
    assert await ledger.block(by_number.hash) == by_number
    assert await ledger.block(await ledger.block_number() + 1000) is None
    assert await ledger.block(bytes([0xAB]) * 32) is None


async def test_a_transaction_by_hash_carries_its_call_and_receipt(world: World) -> None:
    ledger = world.ledger
    data = load_artifact("Token").interface.encode_call("transfer", world.carol.address, 9)
    receipt = await ledger.transact(world.alice, world.token.address, data, gas=90_000)
    tx = await ledger.transaction(receipt.tx_hash)
    assert tx is not None
    assert (tx.hash, tx.sender, tx.to, tx.value, tx.input, tx.gas) == (
        receipt.tx_hash,
        world.alice.address,
        world.token.address,
        0,
        data,
        90_000,
    )
    assert (tx.block_number, tx.index, tx.succeeded, tx.gas_used) == (
        receipt.block_number,
        0,
        True,
        receipt.gas_used,
    )
    assert tx.logs == receipt.logs
    assert tx.contract_address is None
    block = await ledger.block(tx.block_number)
    assert block is not None
    assert tx.block_hash == block.hash
    assert tx.nonce >= 0
    deployed = await ledger.deploy(
        world.owner, load_artifact("TelemetryAnchor").bytecode, gas=3_000_000
    )
    creation = await ledger.transaction(deployed.tx_hash)
    assert creation is not None
    assert creation.to is None
    assert creation.contract_address == deployed.contract_address
    assert await ledger.transaction(bytes([0xCD]) * 32) is None
