"""A Mosquitto of the node's own for the access tests (one per session), and its admin; an
Anvil of each module's own for the paywall's tests on Anvil."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.mosquitto import ManagedMosquitto
from m2mpay.chain import AnvilNode
from tests.node.conftest import chain, make_node  # noqa: F401 (fixtures of the selling tests)
from tests.stream.conftest import make_party  # noqa: F401


@pytest.fixture(scope="module")
def anvil_node() -> Iterator[AnvilNode]:
    """An Anvil of the module's own, its clock the wall clock's. The session's Anvil is
    moved ahead by tests that wait out challenge periods (`evm_increaseTime`), while an
    EIP-3009 authorization is dated by the payer's wall clock, as x402 clients date it:
    on that chain a fresh authorization would read as expired."""
    node = AnvilNode()
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def managed_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedMosquitto]:
    """The node's own broker, as `m2mpay` starts it, on a free loopback port."""
    broker = ManagedMosquitto(tmp_path_factory.mktemp("node"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def dynsec(managed_mosquitto: ManagedMosquitto) -> AsyncIterator[DynsecBroker]:
    """The node's administrator of that broker, prepared (deny by default)."""
    async with DynsecBroker(managed_mosquitto.address) as broker:
        await broker.prepare()
        yield broker


def unique(prefix: str) -> str:
    """A username no other test of the session uses (the broker outlives each test)."""
    return f"{prefix}-{secrets.token_hex(4)}"
