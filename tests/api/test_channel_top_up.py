"""`POST /v1/channels/{id}/deposits` (top up) in-process, on real nodes and a real chain:
the deposit grows on chain and in both nodes' views, payments may then use it; refusals
(a closed channel, more than the node holds, no amount, an unknown channel, no token)
come in the one error shape and move nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import UNIT, Api, ApiFactory, Chain
from tests.waiting import eventually_async


def _error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error.get("field")) == (code, field)
    assert error["message"]


async def _open(buyer: Api, seller: Api, deposit: int) -> str:
    opened = await buyer.http.post(
        "/v1/channels",
        json={
            "peer": seller.address.checksum,
            "endpoint": seller.node.endpoint,
            "deposit": str(deposit),
        },
    )
    assert opened.status_code == 201, opened.text
    channel: str = opened.json()["channel_id"]
    return channel


async def test_a_top_up_adds_to_the_deposit_on_chain_and_the_peer_sees_it(
    chain: Chain, make_api: ApiFactory
) -> None:
    buyer, seller = await make_api(1), await make_api(2)
    channel = await _open(buyer, seller, deposit=100)
    path = f"/v1/channels/{channel}"
    held = await chain.token.balance_of(buyer.address)
    # More than the deposit so far: refused at the channel's balance, until topped up.
    too_much = await buyer.http.post(f"{path}/payments", json={"amount": "150"})
    assert too_much.status_code >= 400, too_much.text

    topped = await buyer.http.post(f"{path}/deposits", json={"amount": "250"})
    assert topped.status_code == 201, topped.text
    assert (topped.json()["deposit_mine"], topped.json()["balance_mine"]) == ("350", "350")
    assert await chain.token.balance_of(buyer.address) == held - 250

    async def peer_sees_it() -> bool:
        shown = (await seller.http.get(path)).json()
        return bool(shown["deposit_peer"] == "350")

    await eventually_async(peer_sees_it)
    paid = await buyer.http.post(f"{path}/payments", json={"amount": "150"})
    assert paid.status_code == 201, paid.text
    assert paid.json()["sent_total"] == "150"


async def test_a_top_up_refused_moves_nothing(chain: Chain, make_api: ApiFactory) -> None:
    buyer, seller = await make_api(1), await make_api(2)
    channel = await _open(buyer, seller, deposit=UNIT)
    path = f"/v1/channels/{channel}"
    held = await chain.token.balance_of(buyer.address)

    _error(
        await buyer.http.post(f"{path}/deposits", json={"amount": str(held + 1)}),
        409,
        "insufficient_funds",
        "amount",
    )
    for body in ({}, {"amount": "0"}, {"amount": "-1"}, {"amount": "1.5"}, {"amount": 5}):
        _error(await buyer.http.post(f"{path}/deposits", json=body), 422, "invalid_input", "amount")
    unknown = "0x" + "ab" * 32
    _error(
        await buyer.http.post(f"/v1/channels/{unknown}/deposits", json={"amount": "1"}),
        404,
        "unknown_channel",
        None,
    )
    _error(
        await buyer.anonymous.post(f"{path}/deposits", json={"amount": "1"}),
        401,
        "unauthorized",
        None,
    )
    closed = await buyer.http.post(f"{path}/close")
    assert closed.status_code == 200, closed.text
    after_close = await chain.token.balance_of(buyer.address)
    _error(
        await buyer.http.post(f"{path}/deposits", json={"amount": "1"}),
        409,
        "channel_not_open",
        "channel_id",
    )
    assert await chain.token.balance_of(buyer.address) == after_close
    assert after_close == held + UNIT  # the deposit back, nothing more taken
