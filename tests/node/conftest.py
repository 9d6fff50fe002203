"""Fixtures of the node tests: an embedded chain with the contracts, and real nodes
(SQLite stores, WebSocket transports) built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from m2mpay.chain import ChannelHub, Deployment, EmbeddedLedger, TokenContract, deploy_contracts
from m2mpay.crypto import PrivateKey
from m2mpay.node import LedgerAccess, Node, NodeConfig
from m2mpay.store import open_store
from m2mpay.wire import Transport, WebSocketTransport
from tests.store.conftest import postgres_url  # noqa: F401 (a fixture, for nodes on PostgreSQL)

UNIT = 10**18


@dataclass
class Chain:
    ledger: EmbeddedLedger
    hub: ChannelHub
    token: TokenContract
    keys: list[PrivateKey]
    deployment: Deployment


@pytest.fixture
async def chain() -> AsyncIterator[Chain]:
    async with EmbeddedLedger() as ledger:
        keys = ledger.dev_accounts()
        deployment, hub, token = await deploy_contracts(
            ledger, keys[0], mint={k.address: 1_000 * UNIT for k in keys[1:6]}
        )
        yield Chain(ledger, hub, token, keys, deployment)


NodeFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(chain: Chain, tmp_path: Path) -> AsyncIterator[NodeFactory]:
    """Builds and starts nodes; every node made is stopped at the end of the test."""
    nodes: list[Node] = []

    async def make(
        index: int,
        *,
        config: NodeConfig | None = None,
        store_name: str | None = None,
        port: int = 0,
        transport: Transport | None = None,
        store_location: str | None = None,
    ) -> Node:
        location = store_location or tmp_path / f"{store_name or f'node{index}'}.sqlite3"
        store = open_store(location, namespace=store_name or "default")
        node = Node(
            chain.keys[index],
            LedgerAccess(chain.ledger, chain.hub.address, chain.keys[index]),
            store,
            transport=transport or WebSocketTransport(port=port),
            config=config or NodeConfig(tick_interval_s=0.05),
        )
        await node.start()
        nodes.append(node)
        return node

    yield make
    for node in reversed(nodes):
        await node.stop()
