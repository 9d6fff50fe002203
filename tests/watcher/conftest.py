"""Fixtures of the watcher tests: a deployed world on a real ledger, and watchers on it.

A watcher here is the real service with a SQLite store, served by uvicorn on a free
loopback port and reached by `WatcherClient` over HTTP, exactly as a party reaches it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from m2mpay.asgi import ErrorBody
from m2mpay.chain import (
    AnvilNode,
    EmbeddedLedger,
    OnchainChannel,
    RpcLedger,
    deploy_contracts,
    dev_keys,
)
from m2mpay.crypto import PrivateKey
from m2mpay.node import LedgerAccess, Node, NodeConfig
from m2mpay.store import open_store
from m2mpay.watcher import Watcher, WatcherConfig, WatcherServer
from m2mpay.watcher_client import WatcherClient
from m2mpay.wire import WebSocketTransport
from tests.conftest import UNIT, World

FAST = WatcherConfig(poll_interval_s=0.02, tick_interval_s=0.05, retry_base_s=0.2)


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy; fail (not time) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.02)


async def make_world(ledger: Any) -> World:
    owner, alice, bob, carol = ledger.dev_accounts()[:4]
    _, hub, token = await deploy_contracts(
        ledger, owner, mint={k.address: 1_000 * UNIT for k in (alice, bob, carol)}
    )
    return World(ledger, hub, token, owner, alice, bob, carol)


@pytest.fixture(params=["embedded", "anvil"])
async def any_world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """Contracts and funded parties on each real ledger kind: in process, and Anvil."""
    if request.param == "embedded":
        async with EmbeddedLedger() as ledger:
            yield await make_world(ledger)
    else:
        node: AnvilNode = request.getfixturevalue("anvil_node")
        async with RpcLedger(node.url, dev_keys=dev_keys()) as client:
            yield await make_world(client)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """The embedded ledger only: for tests whose subject is not the ledger."""
    async with EmbeddedLedger() as ledger:
        yield await make_world(ledger)


@dataclass
class Running:
    """A watcher served over HTTP, and a client of it."""

    watcher: Watcher
    server: WatcherServer
    client: WatcherClient
    url: str

    async def stop(self) -> None:
        await self.client.close()
        await self.server.stop()
        await self.watcher.stop()


StartWatcher = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_watcher(tmp_path: Path) -> AsyncIterator[StartWatcher]:
    """Starts watchers (the last dev key pays gas unless told otherwise); stops them all."""
    running: list[Running] = []

    async def start(
        world: World,
        *,
        store: str | Path | None = None,
        key: PrivateKey | None = None,
        config: WatcherConfig = FAST,
        snapshot_every: int = 50_000,
    ) -> Running:
        location = store if store is not None else tmp_path / f"watcher{len(running)}.sqlite3"
        watcher = Watcher(
            world.ledger,
            world.hub.address,
            open_store(location),
            key or world.ledger.dev_accounts()[-1],
            config=config,
            snapshot_every=snapshot_every,
        )
        await watcher.start()
        await watcher.wait_caught_up()
        server = WatcherServer(watcher)
        url = await server.start()
        handle = Running(watcher, server, WatcherClient(url), url)
        running.append(handle)
        return handle

    yield start
    for handle in reversed(running):
        await handle.stop()  # stopping twice is harmless


MakeNode = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(tmp_path: Path) -> AsyncIterator[MakeNode]:
    """Starts real nodes (SQLite store, WebSocket) on a world's ledger; stops them all.

    `make_node(world, key, name=…)` again with the same name restarts from its store.
    """
    nodes: list[Node] = []

    async def make(world: World, key: PrivateKey, *, name: str | None = None) -> Node:
        store = tmp_path / f"{name or key.address.hex()[:8]}.sqlite3"
        node = Node(
            key,
            LedgerAccess(world.ledger, world.hub.address, key),
            open_store(store),
            transport=WebSocketTransport(),
            config=NodeConfig(tick_interval_s=0.05),
        )
        await node.start()
        nodes.append(node)
        return node

    yield make
    for node in reversed(nodes):
        await node.stop()  # stopping twice is harmless


@dataclass
class Setup:
    """A watcher holding bob's registration and one proof, and raw HTTP to it."""

    world: World
    running: Running
    channel: OnchainChannel
    token: str  # bob's registration
    session: aiohttp.ClientSession

    @property
    def proof_url(self) -> str:
        channel = "0x" + self.channel.id.hex()
        return f"{self.running.url}/v1/channels/{channel}/proofs/{self.world.bob.address}"

    def proof(self, total: int, signer: PrivateKey | None = None) -> dict[str, str]:
        sig = self.world.hub.sign_balance_proof(signer or self.world.alice, self.channel.id, total)
        return {"transferred": str(total), "signature": "0x" + sig.hex()}

    async def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        data = raw if raw is not None else (None if body is None else orjson.dumps(body))
        async with self.session.request(method, url, data=data, headers=headers) as response:
            return response.status, orjson.loads(await response.read())

    async def refused(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        status: int,
        code: str,
        field: str | None = None,
        raw: bytes | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """Send a request that must be refused, and check it changed nothing."""
        before = self.running.watcher.state.snapshot()
        got_status, payload = await self.request(method, url, body, raw=raw, token=token)
        assert (got_status, payload["error"]["code"]) == (status, code), payload
        ErrorBody.model_validate(payload)
        assert payload["error"].get("field") == field, payload
        assert self.running.watcher.state.snapshot() == before
        error: dict[str, Any] = payload["error"]
        return error


@pytest.fixture
async def setup(world: World, start_watcher: StartWatcher) -> AsyncIterator[Setup]:
    channel = await world.channel(10 * UNIT)
    running = await start_watcher(world)
    token = await running.client.register(channel, world.bob)
    await running.client.update(
        channel.id,
        world.bob.address,
        token,
        5,
        world.hub.sign_balance_proof(world.alice, channel.id, 5),
    )

    # Registered after the open: wait for the watcher to read the channel's past
    # events, so that nothing else changes its state while refusals are checked.
    async def backfilled() -> bool:
        view = await running.client.channel(channel.id)
        return bool(view["onchain"]["phase"] == "open")

    await wait_for(backfilled, what="the back-fill")
    async with aiohttp.ClientSession() as session:
        yield Setup(world, running, channel, token, session)
