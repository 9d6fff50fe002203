"""The HTTP 402 paywall end to end on the embedded chain: a plain upstream, the paywall
in front (reverse proxy, `exact` scheme, the seller its own facilitator), our client
paying. A paid request moves exactly the price and reaches the upstream once; an
unpaid one gets 402 and x402's requirements; what a payment buys is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from m2mpay.access.paywall import Paywall
from m2mpay.access.x402_wire import PaymentRequired, decode_header
from m2mpay.chain import AnvilNode, RpcLedger, dev_keys
from m2mpay.client.x402 import (
    PaymentDeclined,
    X402Payer,
    read_payment_required,
    read_payment_response,
)
from m2mpay.errors import TransactionReverted
from tests.access.paywall_rig import BODY, FAILURE, PRICE, Rig, decoded, paywall_rig, routes


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with paywall_rig(tmp_path) as made:
        yield made


async def test_unpaid_request_gets_402_with_the_requirements_and_reaches_no_one(rig: Rig) -> None:
    async with rig.client() as http:
        answer = await http.get("/data")
    assert answer.status_code == 402
    required = decode_header(answer.headers["PAYMENT-REQUIRED"], PaymentRequired)
    assert answer.json() == decoded(answer.headers["PAYMENT-REQUIRED"])
    assert required.error == "PAYMENT-SIGNATURE header is required"
    assert required.resource is not None
    assert required.resource.url.endswith("/data")
    [offer] = required.accepts
    assert offer.scheme == "exact"
    assert offer.network == rig.ledger.caip2
    assert offer.amount == str(PRICE)
    assert offer.asset == rig.token.address.checksum
    assert offer.pay_to == rig.seller.address.checksum
    assert offer.extra == {"name": "M2M Token", "version": "1"}
    assert rig.upstream.gets() == []


async def test_paid_request_moves_exactly_the_price_and_reaches_the_upstream_once(
    rig: Rig,
) -> None:
    before = await rig.balances()
    payer = rig.payer()
    async with rig.client(payer) as http:
        answer = await http.get("/data?q=1")
    assert answer.status_code == 200
    assert answer.content == BODY
    # One Date and one Server, the paywall's: the upstream's are not repeated after them.
    assert [len(answer.headers.get_list(name)) for name in ("date", "server")] == [1, 1]
    settled = read_payment_response(answer.headers["PAYMENT-RESPONSE"])
    assert settled["success"] is True
    assert settled["payer"] == rig.buyer.address.checksum
    [paid] = payer.payments
    assert (paid.amount, paid.transaction) == (PRICE, settled["transaction"])
    receipt = await rig.ledger.wait_for_receipt(bytes.fromhex(settled["transaction"][2:]))
    assert receipt.succeeded
    after = await rig.balances()
    assert after == (before[0] + PRICE, before[1] - PRICE)
    assert rig.upstream.gets() == ["GET /data"]


async def test_client_refuses_above_its_maximum_and_signs_nothing(rig: Rig) -> None:
    before = await rig.balances()
    payer = rig.payer(max_price=PRICE - 1)
    async with rig.client(payer) as http:
        with pytest.raises(PaymentDeclined, match="above the maximum") as refused:
            await http.get("/data")
    assert refused.value.code == "too_expensive"
    assert payer.payments == []
    assert await rig.balances() == before
    assert rig.upstream.gets() == []


async def test_client_prefers_schemes_in_its_order_and_declines_unknown_ones(rig: Rig) -> None:
    payer = X402Payer(rig.buyer, PRICE, schemes=("batch-settlement",))
    async with rig.client(payer) as http:
        with pytest.raises(PaymentDeclined) as refused:
            await http.get("/data")
    assert refused.value.code == "no_payable_requirement"
    payer = X402Payer(rig.buyer, PRICE, schemes=("batch-settlement", "exact"))
    async with rig.client(payer) as http:
        assert (await http.get("/data")).status_code == 200
    assert [p.scheme for p in payer.payments] == ["exact"]


async def test_per_byte_price_is_the_declared_length_and_serves_exactly_it(rig: Rig) -> None:
    before = await rig.balances()
    payer = rig.payer(max_price=10**16)
    async with rig.client(payer) as http:
        answer = await http.get("/big")
    assert answer.status_code == 200
    assert answer.content == b"x" * 1000
    assert payer.payments[0].amount == 1000 * 10**12
    assert (await rig.balances())[0] == before[0] + 1000 * 10**12
    # The paywall asked the upstream's length (HEAD) and fetched the body once.
    assert rig.upstream.gets() == ["GET /big"]


async def test_per_second_price_buys_a_streamed_response_for_its_seconds(rig: Rig) -> None:
    payer = rig.payer(max_price=10**12)
    async with rig.client(payer) as http, http.stream("GET", "/ticks") as answer:
        assert answer.status_code == 200
        body = b"".join([chunk async for chunk in answer.aiter_bytes()])
    # The stream never ends by itself: the paywall ended it when the paid second was up.
    assert body.startswith(b"tick\n")
    assert payer.payments[0].amount == 10**12


async def test_the_same_payment_twice_at_once_is_settled_and_served_once(rig: Rig) -> None:
    before = await rig.balances()
    async with rig.client() as http:
        unpaid = await http.get("/data")
        resource, [offer] = read_payment_required(unpaid.headers["PAYMENT-REQUIRED"])
        header = rig.payer().pay(offer, resource)
        answers = await asyncio.gather(
            *(http.get("/data", headers={"PAYMENT-SIGNATURE": header}) for _ in range(2))
        )
    assert sorted(answer.status_code for answer in answers) == [200, 402]
    assert await rig.balances() == (before[0] + PRICE, before[1] - PRICE)
    assert rig.upstream.gets() == ["GET /data"]


async def test_a_paid_request_on_anvil(tmp_path: Path, anvil_node: AnvilNode) -> None:
    async with (
        RpcLedger(anvil_node.url, dev_keys=dev_keys()) as ledger,
        paywall_rig(tmp_path, ledger) as rig,
    ):
        before = await rig.balances()
        payer = rig.payer()
        async with rig.client(payer) as http:
            answer = await http.get("/data")
        assert answer.status_code == 200
        assert answer.content == BODY
        assert await rig.balances() == (before[0] + PRICE, before[1] - PRICE)
        assert rig.upstream.gets() == ["GET /data"]


async def test_a_websocket_to_a_priced_path_is_closed_unserved(rig: Rig) -> None:
    reached: list[str] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "websocket.connect"}

    paywall = Paywall(app, routes(rig.token), [rig.scheme])
    await paywall({"type": "websocket", "path": "/data", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "payment required"}]
    assert reached == []


async def test_per_byte_without_a_declared_length_is_refused_unpriced(rig: Rig) -> None:
    before = await rig.balances()
    async with rig.client(rig.payer(max_price=10**18)) as http:
        answer = await http.get("/chunked")
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "unpriceable"
    assert "Content-Length" in answer.json()["error"]["message"]
    assert "PAYMENT-REQUIRED" not in answer.headers
    assert await rig.balances() == before
    assert rig.upstream.gets() == []  # asked only with HEAD


async def test_an_upstream_error_passes_through_unreceipted_and_charges_nothing(
    rig: Rig,
) -> None:
    before = await rig.balances()
    payer = rig.payer()
    async with rig.client(payer) as http:
        first = await http.get("/fails")
        header = first.request.headers["PAYMENT-SIGNATURE"]
        again = await http.get("/fails", headers={"PAYMENT-SIGNATURE": header})
    for answer in (first, again):
        assert (answer.status_code, answer.content) == (500, FAILURE)
        assert "PAYMENT-RESPONSE" not in answer.headers
    # Settled only on success: the authorization was never sent, so it is still unused.
    authorization = decoded(header)["payload"]["authorization"]
    nonce = bytes.fromhex(authorization["nonce"][2:])
    assert not await rig.token.authorization_used(rig.buyer.address, nonce)
    assert await rig.balances() == before
    assert payer.payments == []
    assert rig.upstream.gets() == ["GET /fails"] * 2


async def test_a_settlement_refused_after_the_answer_drops_the_answer(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await rig.balances()

    async def reverts(*_: Any) -> None:
        raise TransactionReverted("Token: authorization expired")

    monkeypatch.setattr(rig.token, "transfer_with_authorization", reverts)
    async with rig.client() as http:
        unpaid = await http.get("/data")
        resource, [offer] = read_payment_required(unpaid.headers["PAYMENT-REQUIRED"])
        header = rig.payer().pay(offer, resource)
        answer = await http.get("/data", headers={"PAYMENT-SIGNATURE": header})
    assert answer.status_code == 402
    assert decoded(answer.headers["PAYMENT-REQUIRED"])["error"] == "transaction_failed"
    assert BODY not in answer.content
    assert "PAYMENT-RESPONSE" not in answer.headers
    assert await rig.balances() == before
    assert rig.upstream.gets() == ["GET /data"]  # asked, its answer never released


async def test_in_front_of_its_own_routes_the_paywall_settles_before_the_app(rig: Rig) -> None:
    """Without `settle_on_success` (the node's own routes, which may act on a device),
    the app is reached only once the payment is settled, and an error it answers is paid."""
    seen: list[int] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        seen.append(await rig.token.balance_of(rig.seller.address))
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b""}

    async with rig.client() as http:
        unpaid = await http.get("/data")
    resource, [offer] = read_payment_required(unpaid.headers["PAYMENT-REQUIRED"])
    header = rig.payer().pay(offer, resource).encode()
    before = await rig.balances()
    paywall = Paywall(app, routes(rig.token), [rig.scheme])
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/data",
        "headers": [(b"host", b"127.0.0.1"), (b"payment-signature", header)],
    }
    await paywall(scope, receive, send)
    assert seen == [before[0] + PRICE]  # already paid when the app ran
    assert sent[0]["status"] == 500
    assert b"payment-response" in dict(sent[0]["headers"])
    assert await rig.balances() == (before[0] + PRICE, before[1] - PRICE)
