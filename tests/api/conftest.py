"""Fixtures of the API tests: real nodes on an embedded chain, each behind the real
FastAPI app, reached in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from m2mpay.api import Credentials, Gateway, create_app
from m2mpay.api.fast import create_asgi
from m2mpay.bench.daemons import NodeProcess
from m2mpay.chain.deploy import Deployment
from m2mpay.client import NodeClient
from m2mpay.crypto import Address
from m2mpay.devices.simulated import EnergyMeter, Simulation, constant_power
from m2mpay.errors import DeviceError
from m2mpay.node import Node
from m2mpay.provenance import StreamAnchorer, StreamStore
from m2mpay.store import open_store
from m2mpay.stream import SessionManager, SessionManagerConfig
from m2mpay.stream.context import SessionConfig
from m2mpay.stream.supply import SupplyFactory
from tests.node.conftest import UNIT, Chain, NodeFactory, chain, make_node  # noqa: F401

__all__ = ["TOKEN", "UNIT", "Api", "ApiFactory", "Chain", "funded_channel"]

TOKEN = "m2m_test-token"


@dataclass
class Api:
    node: Node
    sessions: SessionManager
    gateway: Gateway
    http: httpx.AsyncClient  # with the bearer token
    anonymous: httpx.AsyncClient  # without it
    client: NodeClient  # the Python SDK, with the token

    @property
    def address(self) -> Address:
        return self.node.address


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def simulation() -> AsyncIterator[Simulation]:
    sim = Simulation(step_s=0.01, speed=60.0)
    yield sim
    await sim.close()


@pytest.fixture
async def make_api(
    chain: Chain,  # noqa: F811 (the fixture imported above)
    make_node: NodeFactory,  # noqa: F811
    tmp_path: Path,
    simulation: Simulation,
) -> AsyncIterator[ApiFactory]:
    """A node with sessions behind the API; devices are simulated energy meters, or
    what `supplies` (the node's device bus, as `Gateway.supplies`) provides."""
    made: list[tuple[Gateway, httpx.AsyncClient, httpx.AsyncClient, NodeClient]] = []

    def meters(device: str, service: str) -> SupplyFactory:
        if device != "meter" or service != "energy":
            raise DeviceError("unknown_device", f"no device {device}/{service}")
        return lambda _: EnergyMeter(simulation, constant_power(20_000))

    async def make(
        index: int,
        *,
        public_reads: bool = False,
        supplies: Callable[[str, str], SupplyFactory] | None = None,
        streams: StreamStore | None = None,
        stream_anchorer: StreamAnchorer | None = None,
        market: bool = True,
    ) -> Api:
        node = await make_node(index)
        sessions = SessionManager(
            node,
            open_store(tmp_path / f"sessions{index}.sqlite3"),
            config=SessionManagerConfig(
                tick_interval_s=0.05,
                session=SessionConfig(silence_timeout_ms=3_000, receipt_timeout_ms=3_000),
            ),
        )
        await sessions.start()
        deployment = Deployment(
            chain.ledger.chain_id,
            chain.hub.address,
            chain.token.address,
            "M2M",
            chain.keys[0].address,
            0,
            0,
            market=chain.deployment.market if market else None,
        )
        gateway = Gateway(
            node=node,
            sessions=sessions,
            ledger=chain.ledger,
            deployment=deployment,
            credentials=Credentials.for_token(TOKEN, public_reads=public_reads),
            dev_chain=True,
            supplies=supplies or meters,
            streams=streams,
            stream_anchorer=stream_anchorer,
        )
        gateway.events.attach(node, sessions)
        transport = httpx.ASGITransport(app=create_asgi(gateway, create_app(gateway)))
        base = "http://node.test"
        http = httpx.AsyncClient(
            transport=transport, base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        anonymous = httpx.AsyncClient(transport=transport, base_url=base)
        client = NodeClient(base, TOKEN, transport=transport)
        made.append((gateway, http, anonymous, client))
        return Api(node, sessions, gateway, http, anonymous, client)

    yield make
    for gateway, http, anonymous, client in reversed(made):
        await http.aclose()
        await anonymous.aclose()
        await client.aclose()
        await gateway.close()
        await gateway.sessions.stop()


def funded_channel(api: httpx.Client, peer: NodeProcess, deposit: int = 1_000_000) -> str:
    """Through a daemon's API (`api`, with its token): tokens from the faucet, then a
    channel to the `peer` daemon funded with `deposit`; returns the channel id."""
    api.post("/v1/wallet/faucet", json={}).raise_for_status()
    opened = api.post(
        "/v1/channels",
        json={
            "peer": peer.ready["address"],
            "endpoint": peer.ready["peer_endpoint"],
            "deposit": str(deposit),
        },
    )
    assert opened.status_code == 201, opened.text
    channel: str = opened.json()["channel_id"]
    return channel


def paid_and_closed_channel(api: httpx.Client, peer: NodeProcess) -> str:
    """A channel to `peer` opened, paid 1234 and closed cooperatively through `api`, for
    tests that read its history; returns the channel id."""
    channel = funded_channel(api, peer, deposit=1_000_000)
    paid = api.post(f"/v1/channels/{channel}/payments", json={"amount": "1234"})
    assert paid.status_code == 201, paid.text
    closed = api.post(f"/v1/channels/{channel}/close")
    assert closed.status_code == 200, closed.text
    return channel
