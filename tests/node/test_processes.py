"""Nodes in separate processes: on a shared embedded chain or Anvil, and under SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from m2mpay.bench.processes import PeerProcess
from m2mpay.chain import AnvilNode, Ledger, deploy_contracts
from m2mpay.chain.shared import connect_ledger
from m2mpay.node import LedgerAccess, Node, NodeConfig, PaymentWait
from m2mpay.store import open_store
from m2mpay.wire import WebSocketTransport

UNIT = 10**18


@pytest.fixture(params=["shared-data-dir", "anvil"])
async def shared_chain(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Ledger, dict[str, object]]]:
    """A chain several processes reach: the test hosts the embedded chain of a data dir
    (children open the same dir and find the host), or a private Anvil."""
    if request.param == "anvil":
        node: AnvilNode = request.getfixturevalue("anvil_node")
        ledger = await connect_ledger(rpc_url=node.url)
        where: dict[str, object] = {"rpc_url": node.url}
    else:
        ledger = await connect_ledger(data_dir=tmp_path / "chain")
        where = {"chain_dir": tmp_path / "chain"}
    try:
        yield ledger, where
    finally:
        await ledger.stop()


async def test_two_node_processes_open_pay_and_close(
    shared_chain: tuple[Ledger, dict[str, object]], tmp_path: Path
) -> None:
    ledger, where = shared_chain
    keys = ledger.dev_accounts()
    _, hub, token = await deploy_contracts(
        ledger, keys[0], mint={keys[1].address: 100 * UNIT, keys[2].address: 100 * UNIT}
    )
    alice = PeerProcess(key=1, hub=hub.address, store=tmp_path / "a.sqlite3", **where)  # type: ignore[arg-type]
    bob = PeerProcess(key=2, hub=hub.address, store=tmp_path / "b.sqlite3", **where)  # type: ignore[arg-type]
    await asyncio.gather(alice.start(), bob.start())
    alice_before = await token.balance_of(keys[1].address)
    bob_before = await token.balance_of(keys[2].address)
    try:
        opened = await alice.call(
            {
                "cmd": "open",
                "peer": str(bob.address),
                "endpoint": bob.endpoint,
                "asset": str(token.address),
                "deposit": str(10 * UNIT),
                "peer_deposit": str(5 * UNIT),
            }
        )
        channel = opened["channel"]
        await alice.call(
            {"cmd": "stream", "channel": channel, "count": 500, "amount": str(UNIT // 100)}
        )
        await bob.call(
            {"cmd": "stream", "channel": channel, "count": 100, "amount": str(UNIT // 100)}
        )
        closed = await alice.call({"cmd": "close", "channel": channel})
        assert closed["phase"] == "closed"
    finally:
        await alice.stop()
        await bob.stop()
    moved = 400 * UNIT // 100
    assert await token.balance_of(keys[1].address) == alice_before - moved
    assert await token.balance_of(keys[2].address) == bob_before + moved


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (polls state that another process changes)
            await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_payee_killed_at_random_points_loses_no_acknowledged_payment(
    tmp_path: Path,
) -> None:
    """SIGKILL the payee again and again while payments stream in. After each restart its
    replayed state holds at least every payment it acknowledged; at the end both sides
    agree on the newest state."""
    rng = random.Random(7)
    ledger = await connect_ledger(data_dir=tmp_path / "chain")
    keys = ledger.dev_accounts()
    _, hub, token = await deploy_contracts(ledger, keys[0], mint={keys[1].address: 100 * UNIT})
    port = _free_port()
    payee = PeerProcess(
        key=2,
        hub=hub.address,
        store=tmp_path / "payee.sqlite3",
        chain_dir=tmp_path / "chain",
        port=port,
    )
    payer = Node(
        keys[1],
        LedgerAccess(ledger, hub.address, keys[1]),
        open_store(tmp_path / "payer.sqlite3"),
        transport=WebSocketTransport(),
        config=NodeConfig(reconnect_delay_s=0.05, reconnect_max_delay_s=0.5, max_in_flight=512),
    )
    await payer.start()
    await payee.start()
    try:
        info = await payer.open_channel(
            payee.address,  # type: ignore[arg-type]
            token.address,
            50 * UNIT,
            endpoint=payee.endpoint,
        )
        channel = info.channel_id

        async def stream() -> None:
            while True:
                await payer.pay(channel, rng.randint(1, 1000), wait=PaymentWait.QUEUED, timeout=60)

        for _ in range(12):
            streaming = asyncio.ensure_future(stream())
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            await payee.kill()  # in the middle of the stream, at no chosen moment
            acked_before_kill = payer.channel(channel).acked_total
            streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
            await payee.start()
            replayed = await payee.call({"cmd": "info", "channel": "0x" + channel.hex()})
            assert int(replayed["received_total"]) >= acked_before_kill
            await _until(lambda: payer.is_connected(payee.address))  # type: ignore[arg-type]
        sent = payer.channel(channel).sent_total
        await _until(lambda: payer.channel(channel).acked_total == sent)
        final = await payee.call({"cmd": "info", "channel": "0x" + channel.hex()})
        assert int(final["received_total"]) == sent
        assert sent > 0
    finally:
        await payer.stop()
        await payee.stop()
        await ledger.stop()
