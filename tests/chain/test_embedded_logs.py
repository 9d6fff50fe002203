"""Log reads on the embedded chain: exactly the logs its receipts hold, for every filter,
in process and over JSON-RPC, live, after a restart, and on a data dir from before the index."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from m2mpay.chain import (
    EmbeddedLedger,
    Ledger,
    LogEntry,
    OnchainChannel,
    Receipt,
    RpcLedger,
    deploy_hub,
    deploy_token,
    dev_keys,
)
from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.rpc_server import EmbeddedLedgerServer
from m2mpay.crypto import Address
from m2mpay.errors import TransactionReverted

UNIT = 10**18
TRANSFER = load_artifact("Token").interface.event_topic("Transfer")
APPROVAL = load_artifact("Token").interface.event_topic("Approval")
OPENED = load_artifact("ChannelHub").interface.event_topic("ChannelOpened")
DEPOSITED = load_artifact("ChannelHub").interface.event_topic("ChannelDeposited")

Topics = Sequence[bytes | Sequence[bytes] | None] | None


def _topic(address: Address) -> bytes:
    return bytes(12) + address


@dataclass(frozen=True)
class History:
    """Token transfers and approvals, channel opens and deposits (several logs from two
    contracts in one block), blocks without logs and a reverted call, over ~70 blocks."""

    hub: Address
    token: Address
    alice: Address
    bob: Address
    carol: Address
    receipts: tuple[Receipt, ...]
    head: int

    @property
    def logs(self) -> list[LogEntry]:
        return [log for receipt in self.receipts for log in receipt.logs]


async def _make_history(ledger: Ledger, rounds: int = 32) -> History:
    owner, alice, bob, carol = ledger.dev_accounts()[:4]
    hub, hub_receipt = await deploy_hub(ledger, owner)
    token, token_receipt = await deploy_token(ledger, owner, "Test", "TST")
    receipts = [hub_receipt, token_receipt]
    for holder in (alice, bob, carol):
        receipts.append(await token.mint(owner, holder.address, 1_000 * UNIT))
    parties = (alice, bob, carol)
    for n in range(rounds):
        sender, receiver = parties[n % 3], parties[(n + 1 + n // 3) % 3]
        if sender != receiver:
            receipts.append(await token.transfer(sender, receiver.address, n + 1))
        if n % 3 == 0:
            receipts.append(await ledger.transact(owner, owner.address, b"", gas=21_000))
        if n % 4 == 0:
            peer = parties[(n + 1) % 3]
            channel = OnchainChannel(
                sender.address, peer.address, token.address, 60, n + 1, deposit_a=UNIT
            )
            receipts.append(await token.approve(sender, hub.address, 2 * UNIT))
            receipts.append(await hub.open(sender, channel))
            receipts.append(await hub.deposit(sender, channel, sender.address, UNIT))
    with pytest.raises(TransactionReverted):
        await token.mint(carol, carol.address, 1)  # only the owner mints: no logs
    return History(
        hub.address,
        token.address,
        alice.address,
        bob.address,
        carol.address,
        tuple(receipts),
        await ledger.block_number(),
    )


def _select(
    logs: list[LogEntry], addresses: Sequence[Address], topics: Topics, first: int, last: int
) -> list[LogEntry]:
    """The filter written the plain way, over the logs the receipts reported."""

    def topics_match(log: LogEntry) -> bool:
        if not topics:
            return True
        if len(log.topics) < len(topics):
            return False
        return all(
            want is None or (have == want if isinstance(want, bytes) else have in want)
            for have, want in zip(log.topics, topics, strict=False)
        )

    return [
        log
        for log in logs
        if first <= log.block_number <= last and log.address in addresses and topics_match(log)
    ]


@dataclass(frozen=True)
class Query:
    addresses: list[Address]
    topics: Topics = None
    first: int = 0
    last: int | None = None  # None: "latest"


QUERIES: dict[str, Callable[[History], Query]] = {
    "token from genesis": lambda h: Query([h.token]),
    "hub from genesis": lambda h: Query([h.hub]),
    "both contracts": lambda h: Query([h.hub, h.token]),
    "a middle range": lambda h: Query([h.hub, h.token], None, h.head // 3, 2 * h.head // 3),
    "one block, two contracts": lambda h: Query(
        [h.hub, h.token], None, _open_block(h), _open_block(h)
    ),
    "transfers": lambda h: Query([h.token], [TRANSFER]),
    "transfers from alice": lambda h: Query([h.token], [TRANSFER, _topic(h.alice)]),
    "transfers to bob or carol": lambda h: Query(
        [h.token], [TRANSFER, None, [_topic(h.bob), _topic(h.carol)]]
    ),
    "transfers or approvals": lambda h: Query([h.token], [[TRANSFER, APPROVAL]]),
    "anything with alice second": lambda h: Query([h.hub, h.token], [None, _topic(h.alice)]),
    "channels alice opened to bob": lambda h: Query(
        [h.hub], [OPENED, None, _topic(h.alice), _topic(h.bob)]
    ),
    "opens or deposits since the middle": lambda h: Query(
        [h.hub, h.token], [[OPENED, DEPOSITED]], h.head // 2
    ),
    "more topics than a transfer has": lambda h: Query([h.token], [TRANSFER, None, None, None]),
    "an address that never logged": lambda h: Query([Address(b"\x99" * 20)]),
    "past the head": lambda h: Query([h.token], None, h.head + 1),
}


def _open_block(history: History) -> int:
    return next(r.block_number for r in history.receipts if len(r.logs) > 1)


async def _check(ledger: Ledger, history: History, name: str) -> None:
    query = QUERIES[name](history)
    got = await ledger.get_logs(
        address=query.addresses,
        from_block=query.first,
        to_block="latest" if query.last is None else query.last,
        topics=query.topics,
    )
    last = history.head if query.last is None else query.last
    assert got == _select(history.logs, query.addresses, query.topics, query.first, last), name


@pytest.fixture(scope="module")
async def history_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[History, Path]:
    """The history, mined into a data dir that is then closed."""
    data_dir = tmp_path_factory.mktemp("history")
    async with EmbeddedLedger(data_dir) as ledger:
        history = await _make_history(ledger)
        assert history.head == await ledger.block_number()
    return history, data_dir


@asynccontextmanager
async def _served(ledger: EmbeddedLedger) -> AsyncIterator[RpcLedger]:
    server = EmbeddedLedgerServer(ledger)
    url = await server.start()
    try:
        async with RpcLedger(url, dev_keys=dev_keys()) as client:
            yield client
    finally:
        await server.stop()


def test_the_history_has_what_the_queries_need(history_dir: tuple[History, Path]) -> None:
    """Each query selects some logs but not all, or the checks below would prove little."""
    history, _ = history_dir
    assert len(history.logs) > 50
    assert len({log.block_number for log in history.logs}) > 40
    assert any(len(r.logs) == 0 for r in history.receipts)
    assert any(len(r.logs) > 1 for r in history.receipts)
    empty = {"more topics than a transfer has", "an address that never logged", "past the head"}
    for name, make in QUERIES.items():
        query = make(history)
        last = history.head if query.last is None else query.last
        expected = _select(history.logs, query.addresses, query.topics, query.first, last)
        assert bool(expected) == (name not in empty), name
        if query.topics:
            unfiltered = _select(history.logs, query.addresses, None, query.first, last)
            assert len(expected) < len(unfiltered), f"{name}: the topics filter nothing out"


@pytest.mark.parametrize("name", list(QUERIES))
@pytest.mark.parametrize("access", ["in process", "json-rpc"])
async def test_reopened_chain_returns_exactly_the_logs_of_its_receipts(
    history_dir: tuple[History, Path], name: str, access: str
) -> None:
    history, data_dir = history_dir
    async with EmbeddedLedger(data_dir) as ledger:
        if access == "in process":
            await _check(ledger, history, name)
        else:
            async with _served(ledger) as client:
                await _check(client, history, name)


async def test_a_live_in_memory_chain_answers_every_query() -> None:
    async with EmbeddedLedger() as ledger:
        history = await _make_history(ledger, rounds=9)
        async with _served(ledger) as client:
            for name in QUERIES:
                await _check(ledger, history, name)
                await _check(client, history, name)


async def test_logs_mined_after_a_restart_join_the_earlier_ones(
    history_dir: tuple[History, Path], tmp_path: Path
) -> None:
    history, data_dir = history_dir
    shutil.copytree(data_dir, tmp_path / "chain")
    async with EmbeddedLedger(tmp_path / "chain") as ledger:
        later = await _make_history(ledger, rounds=6)
    both = History(
        history.hub,
        history.token,
        history.alice,
        history.bob,
        history.carol,
        history.receipts + later.receipts,
        later.head,
    )
    async with EmbeddedLedger(tmp_path / "chain") as ledger:
        everything = await ledger.get_logs(
            address=[history.hub, history.token, later.hub, later.token], from_block=0
        )
        assert everything == both.logs
        for name in QUERIES:
            await _check(ledger, both, name)
            await _check(ledger, later, name)


@pytest.mark.parametrize("indexed_through", [None, 20])
async def test_a_data_dir_from_before_the_index_is_indexed_when_opened(
    history_dir: tuple[History, Path], tmp_path: Path, indexed_through: int | None
) -> None:
    history, data_dir = history_dir
    shutil.copytree(data_dir, tmp_path / "chain")
    with sqlite3.connect(tmp_path / "chain" / "chain.sqlite3") as conn:
        if indexed_through is None:
            conn.execute("DROP TABLE logs")
            conn.execute("DROP TABLE logs_indexed")
        else:
            conn.execute("DELETE FROM logs WHERE block_number > ?", (indexed_through,))
            conn.execute("UPDATE logs_indexed SET through = ?", (indexed_through,))
    conn.close()
    async with EmbeddedLedger(tmp_path / "chain") as ledger:
        for name in QUERIES:
            await _check(ledger, history, name)


async def _rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    async with session.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    ) as response:
        body = await response.json()
    assert "error" not in body, body
    return body["result"]


async def test_log_filters_over_json_rpc_read_the_index() -> None:
    """eth_newFilter from an old block used the same receipt walk as eth_getLogs."""
    async with EmbeddedLedger() as ledger:
        history = await _make_history(ledger, rounds=6)
        server = EmbeddedLedgerServer(ledger)
        url = await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                params = {
                    "fromBlock": "0x0",
                    "address": str(history.token),
                    "topics": ["0x" + TRANSFER.hex()],
                }
                filter_id = await _rpc(session, url, "eth_newFilter", params)
                logs = await _rpc(session, url, "eth_getFilterLogs", filter_id)
                assert logs == await _rpc(session, url, "eth_getLogs", params)
                expected = _select(history.logs, [history.token], [TRANSFER], 0, history.head)
                assert [(int(log["blockNumber"], 16), log["data"]) for log in logs] == [
                    (log.block_number, "0x" + log.data.hex()) for log in expected
                ]
                # The fields a LogEntry drops agree with the block that holds the log.
                for log in logs[:3]:
                    block = await _rpc(
                        session, url, "eth_getBlockByNumber", log["blockNumber"], False
                    )
                    assert log["blockHash"] == block["hash"]
                    assert (
                        block["transactions"][int(log["transactionIndex"], 16)]
                        == (log["transactionHash"])
                    )
                await _rpc(session, url, "eth_getFilterChanges", filter_id)
                # A block mined later reaches the filter through the index too.
                alice, bob = ledger.dev_accounts()[1:3]
                transfer = load_artifact("Token").interface.encode_call("transfer", bob.address, 7)
                receipt = await ledger.transact(alice, history.token, transfer, gas=100_000)
                changes = await _rpc(session, url, "eth_getFilterChanges", filter_id)
                # eth-tester also reports the log while pending (no block number yet).
                mined = [log for log in changes if log["blockNumber"] is not None]
                assert [int(log["blockNumber"], 16) for log in mined] == [receipt.block_number]
        finally:
            await server.stop()
