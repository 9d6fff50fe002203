"""`X402Payer` with `NodeChannels`: the buyer's own node (over its HTTP API) signs the
channel commitments; a buyer allowed to opens a channel from the 402's hint; one
without a channel falls back to `exact`. The commitments route refuses bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from m2mpay.access.channel_scheme import BATCH_SETTLEMENT, ChannelScheme, commitment_id
from m2mpay.access.exact import ExactEvm
from m2mpay.access.nonce_book import NonceBook
from m2mpay.access.paywall import Paywall
from m2mpay.access.pricing import Price, PriceList
from m2mpay.access.schemes import Scheme
from m2mpay.asgi import AsgiServer
from m2mpay.client import NodeClient
from m2mpay.client.x402 import X402Payer
from m2mpay.client.x402_channels import NodeChannels
from m2mpay.errors import ApiRefusal
from tests.client.conftest import UNIT, Api, ApiFactory, Chain

PRICE = 10**15


async def _reading(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"42"})


@pytest.fixture
async def paywall(
    chain: Chain, make_api: ApiFactory, tmp_path: Path
) -> AsyncIterator[tuple[Api, str]]:
    seller = await make_api(2)
    node = seller.party.node
    exact = ExactEvm(chain.ledger, chain.token, chain.keys[2], NonceBook(tmp_path / "book.sqlite3"))
    await exact.start()
    schemes: list[Scheme] = [
        ChannelScheme(node, chain.token.address, min_deposit=10 * PRICE),
        exact,
    ]
    prices = PriceList.everything(Price(PRICE, chain.token.address))
    server = AsgiServer(Paywall(_reading, prices, schemes), name="paywall")
    try:
        yield seller, await server.start()
    finally:
        await server.stop()
        await exact.stop()


async def test_a_buyer_opens_a_channel_from_the_hint_and_pays_by_commitment(
    chain: Chain, make_api: ApiFactory, paywall: tuple[Api, str]
) -> None:
    seller, url = paywall
    buyer = await make_api(1)
    payer = X402Payer(chain.keys[1], PRICE, channels=NodeChannels(buyer.client, UNIT))
    async with httpx.AsyncClient(base_url=url, auth=payer) as http:
        for _ in range(3):
            answer = await http.get("/reading")
            assert (answer.status_code, answer.content) == (200, b"42")
    [channel] = await buyer.client.channels()
    assert channel.peer == seller.party.node.address
    # A resync just after the open may hand one commitment over the wire first: the
    # buyer then commits once more; the seller holds every total the buyer signed.
    assert channel.sent_total in (3 * PRICE, 4 * PRICE)
    assert [p.scheme for p in payer.payments] == [BATCH_SETTLEMENT] * 3
    assert payer.payments[-1].transaction == commitment_id(
        bytes.fromhex(channel.channel_id[2:]), channel.sent_total
    )
    held = seller.party.node.channel(bytes.fromhex(channel.channel_id[2:]))
    assert held.received_total == channel.sent_total


async def test_a_buyer_without_a_channel_falls_back_to_exact(
    chain: Chain, make_api: ApiFactory, paywall: tuple[Api, str]
) -> None:
    _, url = paywall
    buyer = await make_api(1)
    payer = X402Payer(chain.keys[1], PRICE, channels=NodeChannels(buyer.client))  # may not open
    async with httpx.AsyncClient(base_url=url, auth=payer) as http:
        assert (await http.get("/reading")).status_code == 200
    assert [p.scheme for p in payer.payments] == ["exact"]
    assert await buyer.client.channels() == []


async def test_the_commitments_route_refuses_bad_input(
    make_api: ApiFactory, paywall: tuple[Api, str]
) -> None:
    seller, _ = paywall
    buyer = await make_api(1)
    channel = await buyer.client.open_channel(
        seller.party.node.address, UNIT, endpoint=seller.party.node.endpoint
    )
    for amount in ("0", "-1", "x"):
        with pytest.raises(ApiRefusal) as refused:
            await buyer.client._call(
                "POST", f"/v1/channels/{channel.channel_id}/commitments", body={"amount": amount}
            )
        assert (refused.value.status, refused.value.field) == (422, "amount")
    with pytest.raises(ApiRefusal) as refused:
        await buyer.client.commit(channel.channel_id, 2 * UNIT)
    assert refused.value.code == "insufficient_balance"
    with pytest.raises(ApiRefusal) as refused:
        await buyer.client.commit("0x" + "22" * 32, PRICE)
    assert refused.value.code == "unknown_channel"
    anonymous: NodeClient = buyer.connect()
    try:
        with pytest.raises(ApiRefusal) as refused:
            await anonymous.commit(channel.channel_id, PRICE)
        assert refused.value.status == 401
    finally:
        await anonymous.aclose()
    made = await buyer.client.commit(channel.channel_id, PRICE)
    assert (made.total, made.seq, made.payer) == (PRICE, 1, buyer.party.node.address)
    # Signed and durable, never sent: the seller holds nothing until it is delivered.
    assert seller.party.node.channel(bytes.fromhex(channel.channel_id[2:])).received_total == 0
