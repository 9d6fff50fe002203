"""Fixtures of the client tests: real nodes with session managers on an embedded chain,
each behind the real API (the app and its fast path, built the way
`m2mpay.daemon.daemon` builds them), and a `NodeClient` talking to it in process
(`httpx.ASGITransport`) or over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from m2mpay.api import Credentials, Gateway, create_app
from m2mpay.api.fast import create_asgi
from m2mpay.asgi import AsgiServer
from m2mpay.chain import Deployment
from m2mpay.client import NodeClient
from m2mpay.devices.simulated import EnergyMeter, Simulation, constant_power
from m2mpay.errors import DeviceError
from m2mpay.stream.supply import SupplyFactory
from tests.node.conftest import chain, make_node  # noqa: F401 (fixtures)
from tests.stream.conftest import (  # noqa: F401 (fixtures)
    UNIT,
    Chain,
    Party,
    PartyFactory,
    eventually,
    make_party,
    simulation,
)

__all__ = ["UNIT", "Api", "ApiFactory", "Chain", "eventually"]

METER = "meter/energy"  # the one device service the test nodes can sell
METER_WATTS = 6_000.0  # at the test simulation's speed, ~100 Wh a second


@dataclass
class Api:
    """A node as an API client sees it."""

    party: Party
    gateway: Gateway
    app: Any  # the ASGI app as the daemon serves it
    token: str
    client: NodeClient  # with the token, in process
    servers: list[AsgiServer] = field(default_factory=list)

    def connect(self, token: str | None = None) -> NodeClient:
        """Another client in process, with `token` (none by default); close it after."""
        return NodeClient("http://node.test", token, transport=_transport(self.app))

    async def serve(self) -> str:
        """Serve the app over TCP on a free loopback port (until the test ends); the URL."""
        server = AsgiServer(self.app, port=0, name="test node API")
        self.servers.append(server)
        return await server.start()


ApiFactory = Callable[..., Awaitable[Api]]


def _transport(app: Any) -> httpx.ASGITransport:
    # A real server answers 500 when a handler fails; by default the ASGI transport
    # would raise the handler's exception into the client instead.
    return httpx.ASGITransport(app, raise_app_exceptions=False)


def _meters(clock: Simulation) -> Callable[[str, str], SupplyFactory]:
    """What the device bus will provide: a device's service → a meter for each session."""

    def supplies(device: str, service: str) -> SupplyFactory:
        if f"{device}/{service}" != METER:
            raise DeviceError("unknown_device", f"no device service {device}/{service}")
        return lambda _: EnergyMeter(clock, constant_power(METER_WATTS))

    return supplies


@pytest.fixture
async def make_api(
    chain: Chain,  # noqa: F811 (the fixture imported above)
    make_party: PartyFactory,  # noqa: F811
    simulation: Simulation,  # noqa: F811
) -> AsyncIterator[ApiFactory]:
    """Nodes behind the API; `make_api(index)` uses dev account `index` as the node's key."""
    deployment = Deployment(
        chain_id=chain.ledger.chain_id,
        hub=chain.hub.address,
        token=chain.token.address,
        token_symbol="M2M",
        deployer=chain.keys[0].address,
        block_number=0,
        gas_used=0,
    )
    apis: list[Api] = []

    async def make(index: int, *, public_reads: bool = False) -> Api:
        party = await make_party(index)
        token = f"m2m_test_token_{index}"
        gateway = Gateway(
            node=party.node,
            sessions=party.sessions,
            ledger=chain.ledger,
            deployment=deployment,
            credentials=Credentials.for_token(token, public_reads=public_reads),
            dev_chain=True,
            supplies=_meters(simulation),
        )
        gateway.events.attach(party.node, party.sessions)
        app = create_asgi(gateway, create_app(gateway))
        client = NodeClient("http://node.test", token, transport=_transport(app))
        apis.append(Api(party, gateway, app, token, client))
        return apis[-1]

    yield make
    for api in apis:
        await api.client.aclose()
        for server in api.servers:
            await server.stop()
