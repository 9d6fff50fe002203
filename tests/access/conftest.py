"""A Mosquitto of the node's own for the access tests (one per session), and its admin."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.mosquitto import ManagedMosquitto
from tests.node.conftest import chain, make_node  # noqa: F401 (fixtures of the selling tests)
from tests.stream.conftest import make_party  # noqa: F401


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
