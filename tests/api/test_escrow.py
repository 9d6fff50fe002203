"""The metered escrow through two real nodes' APIs on one embedded chain (in process): a
buyer's node deposits, the seller's node claims with its meter's signed reading or the
buyer's takes the deposit back after the deadline; the SDK and the `m2mpay escrow`
commands over the same routes. Every refusal of the contract reaches the caller with the
contract's reason and the field at fault; bad input is 422 naming the field."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from m2mpay.api import create_app
from m2mpay.api.fast import create_asgi
from m2mpay.asgi import AsgiServer
from m2mpay.cli import app
from m2mpay.cli.escrow import METER_KEY_ENV
from m2mpay.client import sign_meter_reading
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import ApiConflict, ApiInvalidInput
from tests.api.conftest import TOKEN, Api, ApiFactory, Chain

PRICE = 10**15
DEPOSIT = 100 * PRICE  # buys 100 units
METER = PrivateKey.from_hex("0x" + "5e" * 32)
runner = CliRunner()


async def _pair(make_api: ApiFactory) -> tuple[Api, Api]:
    return await make_api(1, market=True), await make_api(2, market=True)


def _signed(chain: Chain, escrow_id: str, reading: int, meter: PrivateKey = METER) -> str:
    assert chain.deployment.market is not None
    return sign_meter_reading(
        meter, chain.ledger.chain_id, chain.deployment.market.escrow, escrow_id, reading
    )


async def _open(buyer: Api, seller: Api, timeout_s: int = 600, **extra: Any) -> dict[str, Any]:
    answer = await buyer.http.post(
        "/v1/escrows",
        json={
            "seller": seller.address.checksum,
            "meter": METER.address.checksum,
            "price": str(PRICE),
            "deposit": str(DEPOSIT),
            "timeout_s": timeout_s,
            **extra,
        },
    )
    assert answer.status_code == 201, answer.text
    opened: dict[str, Any] = answer.json()
    return opened


def _refused(answer: httpx.Response, status: int, reason: str, field: str | None) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert reason in error["message"], error
    assert error.get("field") == field, error


async def test_a_claim_pays_the_reading_and_returns_the_rest_once(
    chain: Chain, make_api: ApiFactory
) -> None:
    buyer, seller = await _pair(make_api)
    token = chain.token
    before = (await token.balance_of(buyer.address), await token.balance_of(seller.address))
    opened = await _open(buyer, seller)
    assert opened["state"] == "open"
    assert opened["role"] == "buyer"
    assert opened["actions"] == ["claim"]
    assert opened["max_reading"] == "100"
    assert opened["asset"] == token.address.checksum
    assert await token.balance_of(buyer.address) == before[0] - DEPOSIT

    # The seller's node finds it by its address in the contract's events.
    [listed] = await seller.client.escrows()
    assert listed.escrow_id == opened["escrow_id"]
    assert listed.role == "seller"
    escrow_id = opened["escrow_id"]

    claimed = await seller.client.claim_escrow(escrow_id, 37, _signed(chain, escrow_id, 37))
    assert claimed.state == "claimed"
    assert claimed.actions == ()
    assert claimed.outcome is not None
    assert (claimed.outcome.reading, claimed.outcome.paid) == (37, 37 * PRICE)
    assert claimed.outcome.refunded == DEPOSIT - 37 * PRICE
    assert await token.balance_of(seller.address) == before[1] + 37 * PRICE
    assert await token.balance_of(buyer.address) == before[0] - 37 * PRICE
    assert (await buyer.client.escrow(escrow_id)).state == "claimed"

    again = await seller.http.post(
        f"/v1/escrows/{escrow_id}/claim",
        json={"reading": "37", "signature": _signed(chain, escrow_id, 37)},
    )
    _refused(again, 409, "MeteredEscrow: escrow already claimed", None)
    await chain.ledger.advance_time(700)
    refund = await buyer.http.post(f"/v1/escrows/{escrow_id}/refund")
    _refused(refund, 409, "MeteredEscrow: escrow already claimed", None)
    assert await token.balance_of(seller.address) == before[1] + 37 * PRICE


async def test_the_contracts_refusals_reach_the_caller_with_its_reason(
    chain: Chain, make_api: ApiFactory
) -> None:
    buyer, seller = await _pair(make_api)
    escrow_id = (await _open(buyer, seller, timeout_s=60))["escrow_id"]
    claim = f"/v1/escrows/{escrow_id}/claim"
    forged = _signed(chain, escrow_id, 10, PrivateKey.from_hex("0x" + "66" * 32))
    _refused(
        await seller.http.post(claim, json={"reading": "10", "signature": forged}),
        409,
        "MeteredEscrow: reading not signed by the meter",
        "signature",
    )
    _refused(
        await seller.http.post(
            claim, json={"reading": "101", "signature": _signed(chain, escrow_id, 101)}
        ),
        409,
        "MeteredEscrow: reading above the deposit",
        "reading",
    )
    with pytest.raises(ApiConflict, match="deadline not reached"):
        await buyer.client.refund_escrow(escrow_id)

    await chain.ledger.advance_time(120)
    assert (await buyer.client.escrow(escrow_id)).actions == ("refund",)
    before = await chain.token.balance_of(buyer.address)
    refunded = await buyer.client.refund_escrow(escrow_id)
    assert refunded.state == "refunded"
    assert refunded.outcome is not None
    assert (refunded.outcome.reading, refunded.outcome.refunded) == (None, DEPOSIT)
    assert await chain.token.balance_of(buyer.address) == before + DEPOSIT
    late = await seller.http.post(
        claim, json={"reading": "10", "signature": _signed(chain, escrow_id, 10)}
    )
    assert late.status_code == 409
    assert late.json()["error"]["message"].startswith("MeteredEscrow: ")


async def test_bad_input_is_refused_naming_the_field(chain: Chain, make_api: ApiFactory) -> None:
    buyer, seller = await _pair(make_api)
    good = {
        "seller": seller.address.checksum,
        "meter": METER.address.checksum,
        "price": str(PRICE),
        "deposit": str(DEPOSIT),
        "timeout_s": 600,
    }
    wrong_case = seller.address.checksum[:2] + seller.address.checksum[2:].swapcase()
    for change, field in (
        ({"price": "0"}, "price"),
        ({"deposit": "-1"}, "deposit"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 31_536_001}, "timeout_s"),
        ({"meter": "0x1234"}, "meter"),
        ({"seller": wrong_case}, "seller"),
        ({"extra": 1}, "extra"),
    ):
        answer = await buyer.http.post("/v1/escrows", json={**good, **change})
        assert answer.status_code == 422, (change, answer.text)
        assert answer.json()["error"]["field"] == field, answer.text
    _refused(
        await buyer.http.post("/v1/escrows", json={**good, "seller": buyer.address.checksum}),
        409,
        "MeteredEscrow: buyer is the seller",
        "seller",
    )
    _refused(
        await buyer.http.post("/v1/escrows", json={**good, "deposit": str(10**40)}),
        409,
        "more than the",
        "deposit",
    )
    unknown = "0x" + "ab" * 32
    assert (await buyer.http.get(f"/v1/escrows/{unknown}")).status_code == 404
    escrow_id = (await _open(buyer, seller))["escrow_id"]
    high_s = "0x" + "11" * 32 + "ff" * 32 + "1b"
    with pytest.raises(ApiInvalidInput) as refused:
        await seller.client.claim_escrow(escrow_id, 1, high_s)
    assert refused.value.field == "signature"
    native = "0x" + "00" * 20
    in_coin = await _open(buyer, seller, asset=native)  # the deposit paid as the value
    assert (in_coin["asset"], in_coin["deposit"]) == (native, str(DEPOSIT))
    without = await make_api(3, market=False)  # recorded before the market existed
    assert (await without.http.get("/v1/escrows")).json()["error"]["code"] == "no_escrow"


async def test_the_escrow_commands_open_claim_and_show(chain: Chain, make_api: ApiFactory) -> None:
    buyer, seller = await _pair(make_api)
    urls = []
    servers = []
    for api in (buyer, seller):
        served = create_asgi(api.gateway, create_app(api.gateway))
        server = AsgiServer(served, port=0, name="escrow test")
        urls.append(await server.start())
        servers.append(server)
    try:

        async def cli(url: str, *args: str, env: dict[str, str] | None = None) -> Any:
            return await asyncio.to_thread(
                runner.invoke,
                app,
                ["escrow", *args],
                env={"M2MPAY_URL": url, "M2MPAY_TOKEN": TOKEN, **(env or {})},
            )

        opened = await cli(
            urls[0],
            "open", seller.address.checksum, "--meter", METER.address.checksum,
            "--price", str(PRICE), "--deposit", str(DEPOSIT), "--timeout", "600", "--json",
        )  # fmt: skip
        assert opened.exit_code == 0, opened.output
        escrow_id = json.loads(opened.stdout)["escrow_id"]
        listed = await cli(urls[1], "list")
        assert listed.exit_code == 0, listed.output
        assert escrow_id[:10] in listed.stdout
        wrong = await cli(
            urls[1], "claim", escrow_id[:12], "--reading", "5",
            env={METER_KEY_ENV: "0x" + "66" * 32},
        )  # fmt: skip
        assert wrong.exit_code == 1
        assert "reading not signed by the meter" in wrong.output
        claimed = await cli(
            urls[1], "claim", escrow_id[:12], "--reading", "5", "--json",
            env={METER_KEY_ENV: "0x" + METER.secret.hex()},
        )  # fmt: skip
        assert claimed.exit_code == 0, claimed.output
        assert json.loads(claimed.stdout)["outcome"]["paid"] == str(5 * PRICE)
        shown = await cli(urls[0], "show", escrow_id[:12])
        assert shown.exit_code == 0, shown.output
        assert "claimed" in shown.stdout
        assert Address(json.loads(claimed.stdout)["seller"]) == seller.address
    finally:
        for server in servers:
            await server.stop()
