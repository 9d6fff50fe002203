"""`m2mpay node --paywall-price … --paywall-upstream …`: the HTTP 402 paywall in the node
process, on the API's port. A buyer whose own node opens a channel from the 402's hint
pays through the reverse proxy in `batch-settlement`; what cannot be served is refused
before any payment; the API answers as before."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from m2mpay.asgi import AsgiServer
from m2mpay.bench.daemons import NodeProcess
from m2mpay.client import NodeClient
from m2mpay.client.x402 import BATCH_SETTLEMENT, X402Payer
from m2mpay.client.x402_channels import NodeChannels
from m2mpay.crypto import PrivateKey

PRICE = 1_000
BODY = b"upstream says hello\n"


async def _upstream(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY if scope["method"] != "HEAD" else b""})


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[NodeProcess, NodeProcess]]:
    upstream = AsgiServer(_upstream, name="upstream")
    url = await upstream.start()
    chain = ["--chain-dir", str(tmp_path / "chain"), "--no-mqtt"]
    seller = NodeProcess(
        tmp_path / "seller", *chain, "--paywall-price", str(PRICE), "--paywall-upstream", url
    )
    buyer = NodeProcess(tmp_path / "buyer", *chain)
    try:
        await asyncio.to_thread(seller.start)
        await asyncio.to_thread(buyer.start)
        yield seller, buyer
    finally:
        await asyncio.to_thread(buyer.stop)
        await asyncio.to_thread(seller.stop)
        await upstream.stop()


@pytest.mark.slow
async def test_a_buyer_node_pays_the_seller_node_paywall_by_channel(
    nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    seller, buyer = nodes
    assert seller.ready["paywall"] == f"{seller.url}/x402/"
    async with httpx.AsyncClient(base_url=seller.url, timeout=60) as http:
        unpaid = await http.get("/x402/upstream/data")
        assert unpaid.status_code == 402
        required = json.loads(base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"]))
        first = required["accepts"][0]
        assert first["scheme"] == BATCH_SETTLEMENT
        assert first["payTo"] == seller.ready["address"]
        assert first["extra"]["channelOpen"]["endpoint"] == seller.ready["peer_endpoint"]
        assert [offer["scheme"] for offer in required["accepts"]] == [BATCH_SETTLEMENT, "exact"]
        # Nothing to sell there: refused before any payment is asked.
        nothing = await http.get("/x402/devices/0x" + "00" * 20 + "/telemetry")
        assert nothing.status_code == 404
        bad = await http.get("/x402/nowhere")
        assert bad.status_code == 404
        assert (await http.get("/v1/info")).status_code in (200, 401)  # the API as before

    token = buyer.ready["api_token"]
    async with NodeClient(buyer.url, token) as client:
        await client._call("POST", "/v1/wallet/faucet", body={})
        payer = X402Payer(
            PrivateKey.generate(),  # never used: no exact payment is allowed here
            PRICE,
            schemes=(BATCH_SETTLEMENT,),
            channels=NodeChannels(client, open_deposit=1_000 * PRICE),
        )
        async with httpx.AsyncClient(base_url=seller.url, auth=payer, timeout=60) as http:
            for _ in range(3):
                answer = await http.get("/x402/upstream/data")
                assert (answer.status_code, answer.content) == (200, BODY)
        [channel] = await client.channels()
    assert channel.peer.checksum == seller.ready["address"]
    assert channel.sent_total >= 3 * PRICE
    assert [paid.scheme for paid in payer.payments] == [BATCH_SETTLEMENT] * 3

    # The shell's side: `m2mpay fetch --node` pays from the same channel, no key needed.
    env = {k: v for k, v in os.environ.items() if k != "M2MPAY_PRIVATE_KEY"}
    fetched = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "m2mpay", "fetch", f"{seller.url}/x402/upstream/data",
         "--max-price", str(PRICE), "--node", buyer.url, "--token", token, "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    said = json.loads(fetched.stdout)
    assert (said["status"], said["body"]) == (200, BODY.decode())
    [paid] = said["paid"]
    assert paid["scheme"] == BATCH_SETTLEMENT
    assert paid["transaction"].startswith(channel.channel_id + ":")
