"""`m2mpay node` as people run it: a process with a keystore, a token shown once, the
API, an event stream, graceful shutdown, and a restart that resumes its channels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from m2mpay.bench.daemons import NodeProcess
from m2mpay.errors import M2MPayError
from tests.api.conftest import funded_channel
from tests.waiting import eventually


@pytest.fixture
def two_daemons(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """Two nodes on one embedded chain (the first hosts it), each with its own data dir."""
    chain = ["--chain-dir", str(tmp_path / "chain")]
    first = NodeProcess(tmp_path / "car", *chain)
    second = NodeProcess(tmp_path / "charger", *chain)
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        second.stop()
        first.stop()


def _auth(node: NodeProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_a_daemon_pays_another_streams_events_and_resumes_after_a_restart(
    two_daemons: tuple[NodeProcess, NodeProcess],
) -> None:
    car, charger = two_daemons
    car_token, charger_token = car.ready["api_token"], charger.ready["api_token"]
    assert car_token
    assert charger_token
    assert car.ready["new_key"] is True
    # The key is at rest in a v3 keystore; the secret appears nowhere else.
    [keystore] = (car.data_dir / "keystore").glob("0x*.json")
    stored = json.loads(keystore.read_text())
    assert stored["version"] == 3
    assert stored["crypto"]["kdf"] == "scrypt"
    assert keystore.stat().st_mode & 0o077 == 0
    assert car_token not in (car.data_dir / "api-token.sha256").read_text()

    with _auth(car, car_token) as api, _auth(charger, charger_token) as other:
        channel = funded_channel(api, charger)
        with other.stream("GET", "/v1/events") as events:
            paid = api.post(f"/v1/channels/{channel}/payments", json={"amount": "250"})
            assert paid.status_code == 201, paid.text
            seen = None
            for line in events.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event.get("t") == "ev.payment_received":
                        seen = event
                        break
        assert seen is not None
        assert seen["kind"] == "channel"
        assert seen["total"] == "250"
        # The total's token, for a reader to scale it by.
        assert seen["asset"] == other.get(f"/v1/channels/{channel}").json()["asset"]

    assert car.stop() == 0  # SIGTERM: a graceful shutdown
    restarted = car.start()
    assert restarted["address"] == car.ready["address"]
    assert restarted["api_token"] is None  # shown once, on the first run only
    assert restarted["new_key"] is False
    with _auth(car, car_token) as api:
        [resumed] = api.get("/v1/channels").json()["channels"]
        assert resumed["channel_id"] == channel
        assert resumed["sent_total"] == "250"
        again = api.post(f"/v1/channels/{channel}/payments", json={"amount": "50"})
        assert again.status_code == 201, again.text
        assert again.json()["sent_total"] == "300"
        closed = api.post(f"/v1/channels/{channel}/close")
        assert closed.json()["phase"] == "closed"


def test_a_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node")
    node.start()
    node.stop()
    intruder = NodeProcess(tmp_path / "node", passphrase="guess")
    with pytest.raises(M2MPayError, match="wrong passphrase"):
        intruder.start()


def test_a_node_on_another_embedded_chain_is_refused_at_once_by_name(tmp_path: Path) -> None:
    # The mistake as a newcomer makes it: the second node without --chain-dir runs a
    # chain of its own, with the same chain id and the same contract addresses.
    car, charger = NodeProcess(tmp_path / "car"), NodeProcess(tmp_path / "charger")
    try:
        car.start()
        charger.start()
        assert car.ready["chain"] == charger.ready["chain"]
        assert car.ready["hub"] == charger.ready["hub"]
        with _auth(car, car.ready["api_token"]) as api, httpx.Client() as public:
            ours = api.get("/v1/info").json()["genesis_hash"]
            theirs = public.get(f"{charger.url}/v1/info").json()["genesis_hash"]
            assert ours != theirs
            api.post("/v1/wallet/faucet", json={}).raise_for_status()
            opened = api.post(
                "/v1/channels",
                json={
                    "peer": charger.ready["address"],
                    "endpoint": charger.ready["peer_endpoint"],
                    "deposit": "1000",
                },
            )
            assert opened.status_code == 409, opened.text
            error = opened.json()["error"]
            assert error["code"] == "wrong_chain"
            assert f"its genesis is {theirs}" in error["message"]
            assert api.get("/v1/channels").json()["channels"] == []
    finally:
        charger.stop()
        car.stop()


async def test_the_node_hosting_the_chain_restarts_where_it_was_and_the_others_carry_on(
    two_daemons: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    car, charger = two_daemons  # the car's node hosts the embedded chain
    rpc_url = (tmp_path / "chain" / "chain.rpc").read_text()
    with _auth(car, car.ready["api_token"]) as api:
        channel = funded_channel(api, charger)
        api.post(f"/v1/channels/{channel}/payments", json={"amount": "250"}).raise_for_status()

    first = car.ready
    assert car.process is not None
    car.process.kill()  # SIGKILL: the chain goes with it
    car.process.wait()
    with _auth(charger, charger.ready["api_token"]) as other:
        away = other.get("/v1/wallet")
        assert away.status_code == 503, away.text
        assert away.json()["error"]["code"] == "ledger_unavailable"

        again = car.start()
        assert (car.url, again["peer_endpoint"]) == (first["url"], first["peer_endpoint"])
        assert (tmp_path / "chain" / "chain.rpc").read_text() == rpc_url
        await eventually(lambda: other.get("/v1/wallet").status_code == 200, timeout=30)
        other.post("/v1/wallet/faucet", json={}).raise_for_status()  # gas for its close
        with _auth(car, first["api_token"]) as api:
            paid = api.post(f"/v1/channels/{channel}/payments", json={"amount": "50"})
            assert paid.status_code == 201, paid.text
            assert paid.json()["acknowledged"] is True
        # The charger closes: its transaction and the chain's events reach it again.
        closed = other.post(f"/v1/channels/{channel}/close")
        assert closed.status_code == 200, closed.text
        assert closed.json()["phase"] == "closed"
        assert closed.json()["received_total"] == "300"
    with _auth(car, first["api_token"]) as api:
        await eventually(
            lambda: api.get(f"/v1/channels/{channel}").json()["phase"] == "closed", timeout=30
        )
