"""The node API against a hostile client: what it sends is refused with a 4xx in the one
error shape, before it costs more than its bound, and the process stays up."""

from __future__ import annotations

import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import pytest

from m2mpay.bench.daemons import NodeProcess
from m2mpay.crypto import UINT256_MAX
from tests.api.conftest import UNIT, Api, ApiFactory

ZERO = "0x" + "00" * 20


def _refused(response: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    if field is not None:
        assert error.get("field") == field, error


def _deep(levels: int) -> bytes:
    return b'{"amount":' + b"[" * levels + b"]" * levels + b"}"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("hostile") / "node")
    node.start()
    yield node
    node.stop()


def test_a_deeply_nested_body_neither_kills_the_node_nor_is_read_without_a_token(
    daemon: NodeProcess,
) -> None:
    token = {"Authorization": f"Bearer {daemon.ready['api_token']}"}
    json = {"content-type": "application/json"}
    with httpx.Client(base_url=daemon.url, timeout=30) as http:
        # 100,000 levels, about 200 KB: once enough to overflow the C stack.
        anonymous = http.post("/v1/wallet/faucet", content=_deep(100_000), headers=json)
        _refused(anonymous, 401, "unauthorized")
        too_big = http.post("/v1/wallet/faucet", content=_deep(100_000), headers=json | token)
        _refused(too_big, 413, "body_too_large")
        # Within the size bound, deeper than any parser here goes.
        too_deep = http.post("/v1/wallet/faucet", content=_deep(20_000), headers=json | token)
        _refused(too_deep, 422, "invalid_input", "body")
        payment = http.post(
            "/v1/channels/0x" + "ab" * 32 + "/payments", content=_deep(20_000), headers=json | token
        )
        _refused(payment, 422, "invalid_input", "body")
        assert daemon.process is not None
        assert daemon.process.poll() is None
        assert http.get("/v1/info").status_code == 200


def test_the_recursion_limit_stays_within_what_the_c_stack_honours() -> None:
    import eth

    from m2mpay.chain import EmbeddedLedger  # imports py-evm and py_ecc, which raise it

    assert EmbeddedLedger is not None
    assert sys.getrecursionlimit() <= eth.EVM_RECURSION_LIMIT


async def test_no_body_is_read_before_the_token_is_checked(make_api: ApiFactory) -> None:
    api = await make_api(1)
    asgi = api.http._transport.app  # type: ignore[attr-defined]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    for path in ("/v1/wallet/faucet", "/v1/channels/0x" + "ab" * 32 + "/payments"):
        sent.clear()
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [(b"content-length", b"50000"), (b"content-type", b"application/json")],
            "query_string": b"",
        }
        await asgi(scope, receive, send)
        assert sent[0]["status"] == 401


async def test_bodies_are_bounded_json_on_every_route(make_api: ApiFactory) -> None:
    api = await make_api(1)
    path = "/v1/channels/0x" + "ab" * 32 + "/payments"
    for route in ("/v1/wallet/faucet", path):
        _refused(await api.http.post(route, content=b"x" * 70_000), 413, "body_too_large")
        _refused(
            await api.http.post(
                route, content=b'{"amount": "1"}', headers={"content-type": "text/plain"}
            ),
            415,
            "unsupported_media_type",
        )
        _refused(await api.http.post(route, content=b"{bad"), 422, "invalid_input", "body")
        _refused(await api.http.post(route, content=b'{"a": "\xff"}'), 422, "invalid_input")


async def test_amounts_beyond_uint256_are_refused_by_name(make_api: ApiFactory) -> None:
    buyer, seller = await make_api(1), await make_api(2)
    for amount in (str(UINT256_MAX + 1), "9" * 78):
        faucet = await buyer.http.post("/v1/wallet/faucet", json={"amount": amount})
        _refused(faucet, 422, "invalid_input", "amount")
        opened = await buyer.http.post(
            "/v1/channels",
            json={
                "peer": seller.address.checksum,
                "endpoint": seller.node.endpoint,
                "deposit": "1",
                "peer_deposit": amount,
            },
        )
        _refused(opened, 422, "invalid_input", "peer_deposit")
    assert buyer.node.channels() == []  # nothing proposed, nothing left behind
    # The largest amount that parses is a chain's refusal, not a crash.
    largest = await buyer.http.post("/v1/wallet/faucet", json={"amount": str(UINT256_MAX)})
    assert 400 <= largest.status_code < 500, largest.text


async def test_a_peer_that_cannot_be_one_is_refused_by_name(make_api: ApiFactory) -> None:
    buyer, seller, other = await make_api(1), await make_api(2), await make_api(3)
    for peer, endpoint in (
        (ZERO, seller.node.endpoint),
        (buyer.address.checksum, seller.node.endpoint),
        (other.address.checksum, seller.node.endpoint),  # not who answers there
    ):
        opened = await buyer.http.post(
            "/v1/channels", json={"peer": peer, "endpoint": endpoint, "deposit": str(UNIT)}
        )
        assert opened.status_code in (409, 422), opened.text
        assert opened.json()["error"]["field"] in ("peer", "endpoint"), opened.text
    assert buyer.node.channels() == []


async def test_a_public_get_with_an_empty_body_header_stays_public(make_api: ApiFactory) -> None:
    api = await make_api(1)
    info = await api.anonymous.get("/v1/info", headers={"content-length": "0"})
    assert info.status_code == 200, info.text
    with_body = await api.anonymous.request("GET", "/v1/info", content=b"{}")
    assert with_body.status_code == 401  # a body is read only for the token's holder


async def test_405_names_the_methods_allowed(make_api: ApiFactory) -> None:
    api = await make_api(1)
    answer = await api.http.put("/v1/wallet/faucet")
    _refused(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "POST"


async def test_booleans_are_booleans_on_the_fast_path_and_the_app(
    api_pair: tuple[Api, Api],
) -> None:
    buyer, _ = api_pair
    [channel] = buyer.node.channels()
    path = f"/v1/channels/0x{channel.channel_id.hex()}/payments"
    _refused(
        await buyer.http.post(path, json={"amount": "1", "wait": "yes"}),
        422,
        "invalid_input",
        "wait",
    )
    paid = await buyer.http.post(path, json={"amount": "1", "wait": False})
    assert paid.status_code == 201, paid.text
    stop = await buyer.http.post("/v1/sessions/0x" + "ab" * 32 + "/stop", json={"wait": "yes"})
    _refused(stop, 422, "invalid_input", "wait")


@pytest.fixture
async def api_pair(make_api: ApiFactory) -> tuple[Api, Api]:
    buyer, seller = await make_api(1), await make_api(2)
    opened = await buyer.http.post(
        "/v1/channels",
        json={"peer": seller.address.checksum, "endpoint": seller.node.endpoint, "deposit": "100"},
    )
    assert opened.status_code == 201, opened.text
    return buyer, seller
