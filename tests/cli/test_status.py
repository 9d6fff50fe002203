"""`m2mpay status` (and `GET /v1/status` under it) against real processes: a node fed
to a watcher on a shared embedded chain, with a channel to a second node; and nodes
served in this process with a session running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel
from typer.testing import Result

from m2mpay.api.app import create_app
from m2mpay.api.fast import create_asgi
from m2mpay.api.routes_status import (
    ChainStatus,
    DisputeRecord,
    NodeStatus,
    PeerStatus,
    WatcherDisputes,
    WatcherStatus,
    WatcherToCheck,
    status_routes,
)
from m2mpay.asgi import AsgiServer
from m2mpay.bench.daemons import NodeProcess
from m2mpay.client import NodeClient
from m2mpay.client import status as client_status
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError
from tests.cli.conftest import cli
from tests.client.conftest import METER, UNIT, Api, ApiFactory, make_api  # noqa: F401
from tests.client.test_views import _client_fields, _server_fields
from tests.node.conftest import chain, make_node  # noqa: F401 (make_api's fixtures)
from tests.stream.conftest import make_party, simulation  # noqa: F401


@pytest.fixture
def fed_node(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    """A watcher and two nodes on one embedded chain; the first node feeds the watcher."""
    chain_dir = tmp_path / "chain"
    assert cli("ledger", "deploy", "--data-dir", str(chain_dir)).exit_code == 0
    watcher = NodeProcess(chain_dir, command=("watcher", "serve"), log_name="watcher")
    started: list[NodeProcess] = []
    try:
        watcher.start()
        started.append(watcher)
        on_chain = ("--chain-dir", str(chain_dir))
        alice = NodeProcess(tmp_path / "alice", *on_chain, "--watcher", watcher.url)
        alice.start()
        started.append(alice)
        bob = NodeProcess(tmp_path / "bob", *on_chain)
        bob.start()
        started.append(bob)
        yield watcher, alice, bob
    finally:
        for process in reversed(started):
            process.stop()


def _status(node: NodeProcess, *args: str) -> Result:
    return cli("status", *args, M2MPAY_URL=node.url, M2MPAY_TOKEN=node.ready["api_token"])


def test_status_names_the_chain_the_connected_peer_and_the_watcher(
    fed_node: tuple[NodeProcess, NodeProcess, NodeProcess],
) -> None:
    watcher, alice, bob = fed_node
    env = {"M2MPAY_URL": alice.url, "M2MPAY_TOKEN": alice.ready["api_token"]}
    assert cli("wallet", "faucet", **env).exit_code == 0
    opened = cli("channel", "open", bob.url, "--deposit", "1000", **env)
    assert opened.exit_code == 0, opened.output

    result = _status(alice, "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    genesis = httpx.get(f"{alice.url}/v1/info").json()["genesis_hash"]
    assert found["address"] == alice.ready["address"]
    seen = found["chain"]
    assert (seen["chain"], seen["genesis_hash"], seen["hub"]) == (
        "eip155:1337",
        genesis,
        alice.ready["hub"],
    )
    assert seen["reachable"] is True
    assert seen["block"] > 0
    assert found["peers"] == [{"address": bob.ready["address"], "connected": True, "channels": 1}]
    assert found["watcher"] == {
        "url": watcher.url,
        "reachable": True,
        "address": watcher.ready["address"],
        "problem": None,
    }
    assert (found["sessions_running"], found["sessions"]) == (0, [])

    shown = _status(alice)
    assert shown.exit_code == 0, shown.output
    for said in ("eip155:1337: reachable, block", genesis[:40], bob.ready["address"], "yes"):
        assert said in shown.stdout
    assert f"{watcher.url}: reachable" in shown.stdout
    assert "no sessions running" in shown.stdout
    assert "M2M (18 decimals)" in shown.stdout  # what the token's amounts mean
    # The route is in the node's schema, behind the token like every read.
    schema = httpx.get(f"{alice.url}/openapi.json").json()
    assert "/v1/status" in schema["paths"]
    assert schema["paths"]["/v1/status"]["get"]["security"] == [{"bearer": []}]  # Authorize
    assert httpx.get(f"{alice.url}/v1/status").status_code == 401

    lonely = _status(bob, "--json")
    assert lonely.exit_code == 0, lonely.output
    assert json.loads(lonely.stdout)["watcher"] is None

    # The watcher's disputes, read through the node: none yet, the watcher reached.
    headers = {"Authorization": f"Bearer {alice.ready['api_token']}"}
    disputes = httpx.get(f"{alice.url}/v1/watcher/disputes", headers=headers).json()
    assert disputes == {"watcher": watcher.url, "reachable": True, "problem": None, "disputes": []}
    bob_headers = {"Authorization": f"Bearer {bob.ready['api_token']}"}
    none = httpx.get(f"{bob.url}/v1/watcher/disputes", headers=bob_headers).json()
    assert (none["watcher"], none["disputes"]) == (None, [])
    assert httpx.get(f"{alice.url}/v1/watcher/disputes").status_code == 401

    watcher.stop()  # and with it the embedded chain it hosted
    away = _status(alice)
    assert away.exit_code == 1  # for scripts and health checks
    assert away.stdout.count("NOT REACHABLE") == 2
    unread = httpx.get(f"{alice.url}/v1/watcher/disputes", headers=headers).json()
    assert (unread["reachable"], unread["disputes"]) == (False, [])
    assert unread["problem"]
    gone = json.loads(_status(alice, "--json").stdout)
    assert gone["watcher"]["reachable"] is False
    assert gone["watcher"]["problem"]
    assert gone["chain"]["reachable"] is False
    assert gone["chain"]["problem"]


async def _serve_with_status(api: Api, watcher: WatcherToCheck | None = None) -> str:
    """The node's API with the status route, as `m2mpay node` serves it, over TCP."""
    app = create_asgi(api.gateway, create_app(api.gateway, extra=[status_routes(watcher)]))
    server = AsgiServer(app, port=0, name="test node API")
    api.servers.append(server)
    return await server.start()


async def _cli(url: str, token: str, *args: str) -> Result:
    return await asyncio.to_thread(cli, *args, M2MPAY_URL=url, M2MPAY_TOKEN=token)


async def test_status_lists_the_sessions_that_run(make_api: ApiFactory) -> None:  # noqa: F811
    seller, buyer = await make_api(1), await make_api(2)
    buyer_url = await _serve_with_status(buyer)
    offer = await seller.client.publish_offer(
        kind="energy", unit="Wh", price=10**15, window=10, batch=2, device=METER
    )
    endpoint = seller.party.node.endpoint
    session = await buyer.client.start_session(offer, endpoint=endpoint, deposit=UNIT)

    result = await _cli(buyer_url, buyer.token, "status", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["sessions_running"] == 1
    assert [s["session_id"] for s in found["sessions"]] == [session.session_id]
    assert found["peers"] == [
        {"address": seller.party.node.address.checksum, "connected": True, "channels": 1}
    ]
    shown = await _cli(buyer_url, buyer.token, "status")
    assert session.session_id[:10] in shown.stdout
    assert "1 running session(s)" in shown.stdout

    await buyer.client.stop_session(session.session_id)
    stopped = json.loads((await _cli(buyer_url, buyer.token, "status", "--json")).stdout)
    assert (stopped["sessions_running"], stopped["sessions"]) == (0, [])


def test_the_clients_status_types_match_the_routes_models() -> None:
    pairs: list[tuple[type[object], type[BaseModel]]] = [
        (client_status.NodeStatus, NodeStatus),
        (client_status.ChainStatus, ChainStatus),
        (client_status.PeerStatus, PeerStatus),
        (client_status.WatcherStatus, WatcherStatus),
        (client_status.WatcherDisputes, WatcherDisputes),
        (client_status.DisputeRecord, DisputeRecord),
    ]
    for ours, theirs in pairs:
        assert _client_fields(ours) == _server_fields(theirs), ours.__name__


def _dispute(number: int, channel_id: str, **changed: object) -> dict[str, object]:
    """A dispute in the watcher's `DisputeView` shape."""
    return {
        "id": number,
        "kind": "challenge",
        "status": "mined",
        "channel_id": channel_id,
        "participant": "0x" + "33" * 20,
        "beneficiary": "0x" + "44" * 20,
        "transferred": "700",
        "replaced": "500",
        "balance_a": None,
        "balance_b": None,
        "tx_hash": "0x" + "55" * 32,
        "block": 12,
        "close_block": 11,
        "close_seen_at_ms": 1_000,
        "submitted_at_ms": 1_100,
        "mined_at_ms": 1_200,
        "latency_ms": 200,
        "reason": None,
        **changed,
    }


async def test_the_watcher_s_disputes_of_this_node_s_channels_only_checked(
    make_api: ApiFactory,  # noqa: F811
) -> None:
    """A double stands for the watcher's answer (the real one, with none, is above): only
    the disputes of this node's channels come through, newest first; one the watcher got
    wrong is dropped, not passed on; a watcher that fails is said to."""
    seller, buyer = await make_api(1), await make_api(2)
    opened = await buyer.client.open_channel(
        seller.party.node.address, UNIT, endpoint=seller.party.node.endpoint
    )
    ours = opened.channel_id
    told: list[dict[str, object]] = [
        _dispute(1, ours),
        _dispute(2, "0x" + "66" * 32),  # another node's channel at the same watcher
        _dispute(3, ours, kind="settle", transferred=None, balance_a="1", balance_b="2"),
        _dispute(4, ours, transferred="-5"),  # malformed: not an amount
    ]
    failing = False

    async def disputes() -> list[dict[str, object]]:
        if failing:
            raise M2MPayError("the watcher is away")
        return told

    async def ask() -> Address:
        return Address("0x" + "77" * 20)

    url = await _serve_with_status(buyer, WatcherToCheck("http://watcher", ask, disputes))
    client = NodeClient(url, buyer.token)
    try:
        seen = await client.watcher_disputes()
        assert (seen.watcher, seen.reachable, seen.problem) == ("http://watcher", True, None)
        assert [(d.id, d.kind, d.transferred) for d in seen.disputes] == [
            (3, "settle", None),
            (1, "challenge", 700),
        ]
        assert seen.disputes[0].balance_b == 2
        failing = True
        away = await client.watcher_disputes()
        assert (away.reachable, away.problem, away.disputes) == (
            False,
            "the watcher is away",
            (),
        )
    finally:
        await client.aclose()
