"""The node API in-process, on real nodes and a real chain: credentials, the error
shape, wallet, channels end to end, the storefront and metered sessions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from m2mpay.chain import NATIVE_TOKEN
from tests.api.conftest import UNIT, Api, ApiFactory, Chain


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


async def _open(buyer: Api, seller: Api, deposit: int = UNIT) -> dict[str, Any]:
    response = await buyer.http.post(
        "/v1/channels",
        json={
            "peer": seller.address.checksum,
            "endpoint": seller.node.endpoint,
            "deposit": str(deposit),
        },
    )
    assert response.status_code == 201, response.text
    channel: dict[str, Any] = response.json()
    return channel


async def test_info_is_public_and_everything_else_needs_the_token(make_api: ApiFactory) -> None:
    api = await make_api(1)
    info = (await api.anonymous.get("/v1/info")).json()
    assert info["address"] == api.address.checksum
    assert info["chain"] == "eip155:1337"
    assert info["contracts"]["token_symbol"] == "M2M"
    assert info["public_reads"] is False  # the web app asks before it shows public pages
    assert (await api.anonymous.get("/v1/offers")).status_code == 200
    for method, path in (
        ("GET", "/v1/wallet"),
        ("GET", "/v1/channels"),
        ("GET", "/v1/sessions"),
        ("POST", "/v1/wallet/faucet"),
        ("POST", "/v1/channels"),
        ("POST", "/v1/sessions"),
    ):
        refused = await api.anonymous.request(method, path, json={})
        _error(refused, 401, "unauthorized")
        assert refused.headers["www-authenticate"] == "Bearer"
    wrong = await api.anonymous.get("/v1/wallet", headers={"Authorization": "Bearer nope"})
    _error(wrong, 401, "unauthorized")


async def test_public_reads_open_reads_but_never_writes(make_api: ApiFactory) -> None:
    api = await make_api(1, public_reads=True)
    assert (await api.anonymous.get("/v1/info")).json()["public_reads"] is True
    assert (await api.anonymous.get("/v1/wallet")).status_code == 200
    _error(await api.anonymous.post("/v1/wallet/faucet", json={}), 401, "unauthorized")


async def test_wallet_faucet_and_transfers(chain: Chain, make_api: ApiFactory) -> None:
    api = await make_api(1)
    other = chain.keys[5].address
    funded = await api.http.post("/v1/wallet/faucet", json={"amount": "5", "native": "7"})
    assert funded.status_code == 200, funded.text
    token_before = await chain.token.balance_of(other)
    sent = await api.http.post(
        "/v1/wallet/transfers",
        json={"to": other.checksum, "asset": chain.token.address.checksum, "amount": "3"},
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["gas_used"] > 21_000
    assert await chain.token.balance_of(other) == token_before + 3
    coin_before = await chain.ledger.balance(other)
    await api.http.post(
        "/v1/wallet/transfers",
        json={"to": other.checksum, "asset": NATIVE_TOKEN.checksum, "amount": "2"},
    )
    assert await chain.ledger.balance(other) == coin_before + 2
    wallet = (await api.http.get("/v1/wallet")).json()
    token = next(b for b in wallet["balances"] if b["symbol"] == "M2M")
    assert int(token["on_chain"]) == await chain.token.balance_of(api.address)


async def test_a_channel_in_a_factory_token_shows_in_the_wallet_in_that_tokens_decimals(
    make_api: ApiFactory,
) -> None:
    buyer, seller = await make_api(1), await make_api(2)
    watt = await buyer.client.create_token("IoT-Watt", "WATT", decimals=6, supply=10 * 10**6)
    await buyer.client.open_channel(
        seller.address, 4 * 10**6, endpoint=seller.node.endpoint, asset=watt.address
    )
    wallet = await buyer.client.wallet()
    assert [(b.symbol, b.decimals) for b in wallet.balances] == [
        ("ETH", 18),
        ("M2M", 18),
        ("WATT", 6),
    ]
    held = wallet.balance("WATT")
    assert held.asset == watt.address
    assert (held.on_chain, held.in_channels) == (6 * 10**6, 4 * 10**6)
    # The seller has an open channel in WATT too, with nothing on its side yet.
    theirs = (await seller.client.wallet()).balance(watt.address)
    assert (theirs.symbol, theirs.decimals) == ("WATT", 6)
    assert (theirs.on_chain, theirs.in_channels) == (0, 0)


async def test_a_channel_through_the_api_open_pay_close(chain: Chain, make_api: ApiFactory) -> None:
    buyer, seller = await make_api(1), await make_api(2)
    before = await chain.token.balance_of(seller.address)
    channel = await _open(buyer, seller)
    assert channel["phase"] == "open"
    assert channel["deposit_mine"] == str(UNIT)
    path = f"/v1/channels/{channel['channel_id']}"
    for amount in (5, 7, 11):
        paid = await buyer.http.post(f"{path}/payments", json={"amount": str(amount)})
        assert paid.status_code == 201, paid.text
        assert paid.json()["acknowledged"] is True
    assert paid.json()["sent_total"] == "23"
    quick = await buyer.http.post(f"{path}/payments", json={"amount": "1", "wait": False})
    assert quick.json()["sent_total"] == "24"
    listed = (await buyer.http.get("/v1/channels")).json()["channels"]
    assert [c["channel_id"] for c in listed] == [channel["channel_id"]]
    shown = (await seller.http.get(path)).json()
    assert shown["received_total"] in ("23", "24")
    closed = await buyer.http.post(f"{path}/close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["phase"] == "closed"
    assert await chain.token.balance_of(seller.address) == before + 24


async def test_bad_requests_get_one_error_shape(make_api: ApiFactory) -> None:
    buyer, seller = await make_api(1), await make_api(2)
    channel = await _open(buyer, seller, deposit=100)
    path = f"/v1/channels/{channel['channel_id']}"
    error = _error(
        await buyer.http.post(f"{path}/payments", json={"amount": "-5"}), 422, "invalid_input"
    )
    assert error["field"] == "amount"
    error = _error(
        await buyer.http.post(f"{path}/payments", json={"amount": "5", "tip": "1"}),
        422,
        "invalid_input",
    )
    assert error["field"] == "tip"
    _error(await buyer.http.post(f"{path}/payments", content=b"{not json"), 422, "invalid_input")
    _error(
        await buyer.http.post(f"{path}/payments", json={"amount": "101"}),
        409,
        "insufficient_balance",
    )
    unknown = "/v1/channels/0x" + "ab" * 32
    _error(await buyer.http.get(unknown), 404, "unknown_channel")
    error = _error(await buyer.http.get("/v1/channels/0x12"), 422, "invalid_input")
    assert error["field"] == "channel_id"
    _error(await buyer.http.get("/v1/nowhere"), 404, "not_found")
    _error(
        await buyer.http.post(
            "/v1/offers",
            json={
                "kind": "energy",
                "unit": "Wh",
                "price": "1",
                "window": 2,
                "device": "ghost/energy",
            },
        ),
        404,
        "unknown_device",
    )


async def test_a_metered_session_bought_and_sold_through_the_apis(make_api: ApiFactory) -> None:
    car, charger = await make_api(1), await make_api(2)
    published = await charger.http.post(
        "/v1/offers",
        json={
            "kind": "energy",
            "unit": "Wh",
            "price": "1000",
            "window": 10,
            "batch": 2,
            "device": "meter/energy",
        },
    )
    assert published.status_code == 201, published.text
    # The car discovers the offer in the charger's public storefront.
    offers = (await charger.anonymous.get("/v1/offers")).json()["offers"]
    assert [o["offer_id"] for o in offers] == [published.json()["offer_id"]]
    started = await car.http.post(
        "/v1/sessions",
        json={
            "offer": offers[0],
            "endpoint": charger.node.endpoint,
            "deposit": str(UNIT),
            "target_units": 40,
        },
    )
    assert started.status_code == 201, started.text
    session = started.json()
    assert session["role"] == "buyer"
    assert session["phase"] == "active"
    path = f"/v1/sessions/{session['session_id']}"
    _error(await car.http.get(f"{path}/receipt"), 404, "not_found")
    stopped = await car.sessions.wait_stopped(bytes.fromhex(session["session_id"][2:]), timeout=30)
    assert stopped.stop_reason == "target reached"
    shown = (await car.http.get(path)).json()
    assert shown["phase"] == "stopped"
    assert shown["countersigned"] is True
    assert shown["forward"] == {"units": 40, "value": "40000", "paid": "40000"}
    receipt = (await car.http.get(f"{path}/receipt")).json()
    assert receipt["forward"] == shown["forward"]
    sold = (await charger.http.get(path)).json()
    assert sold["role"] == "seller"
    assert sold["forward"] == shown["forward"]
    withdrawn = await charger.http.delete(f"/v1/offers/{offers[0]['offer_id']}")
    assert withdrawn.status_code == 204
    assert (await charger.anonymous.get("/v1/offers")).json()["offers"] == []


@pytest.mark.parametrize("field", ["kind", "price", "window"])
async def test_an_offer_with_a_bad_field_is_refused_by_name(
    make_api: ApiFactory, field: str
) -> None:
    api = await make_api(1)
    body = {"kind": "energy", "unit": "Wh", "price": "10", "window": 4, "device": "meter/energy"}
    body[field] = {"kind": "plasma", "price": "0", "window": 0}[field]
    error = _error(await api.http.post("/v1/offers", json=body), 422, "invalid_input")
    assert error["field"] == field
