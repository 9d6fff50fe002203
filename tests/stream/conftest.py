"""Fixtures of the session tests: real nodes on an embedded chain, each with a session
manager on its own SQLite store, and a fast simulation clock for the devices."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from m2mpay.devices.simulated import Simulation
from m2mpay.node import Node
from m2mpay.store import open_store
from m2mpay.stream import SessionManager, SessionManagerConfig
from m2mpay.stream.context import SessionConfig
from m2mpay.stream.supply import SupplyFactory
from tests.node.conftest import UNIT, Chain, NodeFactory, chain, make_node  # noqa: F401
from tests.waiting import eventually

__all__ = ["UNIT", "Chain", "Party", "PartyFactory", "eventually"]

FAST = SessionConfig(silence_timeout_ms=1_500, receipt_timeout_ms=3_000, resend_ms=300)


@dataclass
class Party:
    node: Node
    sessions: SessionManager
    store_path: Path


PartyFactory = Callable[..., Awaitable[Party]]


@pytest.fixture
async def simulation() -> AsyncIterator[Simulation]:
    sim = Simulation(step_s=0.01, speed=60.0)  # a simulated minute each second
    yield sim
    await sim.close()


@pytest.fixture
async def make_party(
    make_node: NodeFactory,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> AsyncIterator[PartyFactory]:
    """A node with a session manager; all are stopped at the end of the test."""
    managers: list[SessionManager] = []

    async def make(
        index: int,
        *,
        feed_back: SupplyFactory | None = None,
        session: SessionConfig = FAST,
        node: Node | None = None,
    ) -> Party:
        node = node or await make_node(index)
        path = tmp_path / f"sessions{index}.sqlite3"
        manager = SessionManager(
            node,
            open_store(path),
            config=SessionManagerConfig(tick_interval_s=0.05, session=session),
            feed_back=feed_back,
        )
        await manager.start()
        managers.append(manager)
        return Party(node, manager, path)

    yield make
    for manager in reversed(managers):
        await manager.stop()
