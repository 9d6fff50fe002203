"""What the chain-fault and reorganisation tests share: a ledger on the test's own
Anvil (each test module says how its Anvil starts), two nodes on deployed contracts,
and a reorganisation through Anvil's `anvil_reorg`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from m2mpay.chain import (
    AnvilNode,
    ChannelHub,
    RpcLedger,
    TokenContract,
    deploy_contracts,
)
from m2mpay.chain.devkeys import dev_keys
from m2mpay.node import LedgerAccess, Node, NodeConfig
from m2mpay.store import open_store
from m2mpay.wire import WebSocketTransport

__all__ = ["UNIT", "anvil_ledger", "car_and_charger", "reorg_from"]

UNIT = 10**18


@pytest.fixture(name="ledger")  # imported by name, it stands in for the suite's `ledger`
async def anvil_ledger(anvil: AnvilNode) -> AsyncIterator[RpcLedger]:
    rpc = RpcLedger(anvil.url, dev_keys=dev_keys())
    await rpc.start()
    yield rpc
    await rpc.stop()


async def car_and_charger(
    ledger: RpcLedger, tmp_path: Path
) -> tuple[ChannelHub, TokenContract, tuple[Node, Node]]:
    """Contracts on the ledger, and two started nodes on it; the car holds tokens."""
    keys = ledger.dev_accounts()
    _, hub, token = await deploy_contracts(ledger, keys[0], mint={keys[1].address: 100 * UNIT})
    nodes = [
        Node(
            keys[i],
            LedgerAccess(ledger, hub.address, keys[i]),
            open_store(tmp_path / f"node{i}.sqlite3"),
            transport=WebSocketTransport(),
            config=NodeConfig(tick_interval_s=0.05),
        )
        for i in (1, 2)
    ]
    for node in nodes:
        await node.start()
    return hub, token, (nodes[0], nodes[1])


async def reorg_from(ledger: RpcLedger, block: int) -> None:
    """Replace `block` and every block after it with empty ones."""
    depth = await ledger.block_number() - block + 1
    answer: dict[str, Any] = await ledger.w3.provider.make_request("anvil_reorg", [depth, []])
    assert "error" not in answer, answer
