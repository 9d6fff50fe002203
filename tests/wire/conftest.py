"""Fixtures of the wire tests: a private Mosquitto broker and the three transports."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from m2mpay.crypto import PrivateKey
from m2mpay.wire import MemoryTransport, MqttTransport, Transport, WebSocketTransport
from tests.conftest import Broker

TRANSPORT_KINDS = ("memory", "websocket", "mqtt")


_names = itertools.count()

TransportFactory = Callable[[], Transport]


@pytest.fixture(params=TRANSPORT_KINDS)
def transport_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_transport(transport_kind: str, request: pytest.FixtureRequest) -> TransportFactory:
    """Builds unstarted transports of the parametrized kind (each MQTT one with a new key)."""

    def make() -> Transport:
        if transport_kind == "memory":
            return MemoryTransport(f"test-{next(_names)}")
        if transport_kind == "websocket":
            return WebSocketTransport("127.0.0.1", 0)
        broker: Broker = request.getfixturevalue("mosquitto")
        return MqttTransport(
            broker.host, broker.port, PrivateKey.generate().address, connect_timeout=1.0
        )

    return make


@pytest.fixture
async def transports(make_transport: TransportFactory) -> AsyncIterator[list[Transport]]:
    """Three started transports of one kind, stopped after the test."""
    started = [make_transport() for _ in range(3)]
    for transport in started:
        await transport.start()
    yield started
    for transport in started:
        await transport.stop()
