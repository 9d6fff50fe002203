"""`m2mpay bench paywall`: what the HTTP 402 paywall adds to a request, per scheme.

A plain upstream (a tiny ASGI app) and the paywall in front of it (`UpstreamProxy` and
`Paywall`), each on its own `AsgiServer`, on the embedded chain in this process (or a
ledger given). The same request is timed straight to the upstream (unpaid) and through
the paywall, paid; `added_*_ms` are the paid latencies' percentiles minus the unpaid
ones'. A paid request carries its `PAYMENT-SIGNATURE` signed ahead (a client that knows
the price pays at once; the 402 that told it is one request a resource), so what is
timed is the paywall's own work: verify, record, settle on chain, proxy. One client,
one request at a time: `exact` settles each payment in a transaction, and one
seller's transactions are sent in order.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from m2mpay.access.channel_scheme import ChannelScheme
from m2mpay.access.exact import ExactEvm
from m2mpay.access.nonce_book import NonceBook
from m2mpay.access.paywall import Paywall
from m2mpay.access.pricing import Price, PriceList
from m2mpay.access.proxy import UpstreamProxy
from m2mpay.asgi import AsgiServer
from m2mpay.chain import EmbeddedLedger
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.ledger import Ledger
from m2mpay.client.x402 import (
    OfferedPayment,
    X402Payer,
    payment_header,
    read_payment_required,
)
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import M2MPayError
from m2mpay.node import LedgerAccess, Node, NodeConfig
from m2mpay.store import open_store
from m2mpay.wire import WebSocketTransport

__all__ = ["measure_paywall"]

_BODY = b'{"reading": 42}'
_PRICE = 10**15


async def _upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"15")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _BODY})


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@asynccontextmanager
async def _ledger(given: Ledger | None) -> AsyncIterator[Ledger]:
    if given is not None:
        yield given
        return
    async with EmbeddedLedger() as ledger:
        yield ledger


async def measure_paywall(
    *, requests: int = 200, ledger: Ledger | None = None, clients: int = 8
) -> dict[str, Any]:
    """Time `requests` requests unpaid to the upstream and paid through the paywall, in
    each scheme, one at a time; then the channel scheme with `clients` clients at once,
    each on a channel of its own (the seller's log then shares its flushes)."""
    async with _ledger(ledger) as chain, _servers(chain, clients) as rig:
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in range(10):  # warm: connections, the token's code paths
                await http.get(f"{rig.upstream_url}/reading")
            direct = []
            for _ in range(requests):
                started = time.perf_counter()
                answer = await http.get(f"{rig.upstream_url}/reading")
                direct.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise M2MPayError(f"the upstream answered {answer.status_code}")
            unpaid = await http.get(f"{rig.paywall_url}/reading")
            resource, offers = read_payment_required(unpaid.headers["PAYMENT-REQUIRED"])
            [exact] = [offer for offer in offers if offer.scheme == "exact"]
            [channel] = [offer for offer in offers if offer.scheme != "exact"]
            exact_headers = [rig.payer.pay(exact, resource) for _ in range(requests)]
            channel_headers = [await rig.commitment(channel, resource) for _ in range(requests)]
            results: dict[str, dict[str, Any]] = {}
            for name, headers in (("channel", channel_headers), ("exact", exact_headers)):
                paid, elapsed = await _paid_requests(http, f"{rig.paywall_url}/reading", headers)
                p50, p99 = _percentile(paid, 0.5), _percentile(paid, 0.99)
                results[name] = {
                    "requests_per_s": round(requests / elapsed, 1),
                    "p50_ms": round(p50 * 1000, 3),
                    "p99_ms": round(p99 * 1000, 3),
                    "added_p50_ms": round((p50 - _percentile(direct, 0.5)) * 1000, 3),
                    "added_p99_ms": round((p99 - _percentile(direct, 0.99)) * 1000, 3),
                }
            results["channel_concurrent"] = await _concurrently(
                rig, http, channel, resource, requests, clients
            )
        results["exact"]["settles"] = "one EIP-3009 transaction a request, its receipt awaited"
        results["channel"]["settles"] = (
            "the buyer's running total, durable in the seller node's log; redeemed at close"
        )
        return {
            "ledger": chain.description,
            "chain": chain.caip2,
            "requests": requests,
            "concurrency": 1,
            "unpaid_p50_ms": round(_percentile(direct, 0.5) * 1000, 3),
            "unpaid_p99_ms": round(_percentile(direct, 0.99) * 1000, 3),
            **results,
            "channel_vs_exact_requests_per_s": round(
                results["channel"]["requests_per_s"] / results["exact"]["requests_per_s"], 1
            ),
        }


async def _paid_requests(
    http: httpx.AsyncClient, url: str, headers: list[str]
) -> tuple[list[float], float]:
    paid = []
    began = time.perf_counter()
    for header in headers:
        started = time.perf_counter()
        answer = await http.get(url, headers={"PAYMENT-SIGNATURE": header})
        paid.append(time.perf_counter() - started)
        if answer.status_code != 200 or answer.content != _BODY:
            raise M2MPayError(f"a paid request was answered {answer.status_code}: {answer.text}")
    return paid, time.perf_counter() - began


async def _concurrently(
    rig: _Rig,
    http: httpx.AsyncClient,
    offer: OfferedPayment,
    resource: dict[str, Any] | None,
    requests: int,
    clients: int,
) -> dict[str, Any]:
    each = max(1, requests // clients)
    headers = [
        [await rig.commitment(offer, resource, client) for _ in range(each)]
        for client in range(clients)
    ]
    began = time.perf_counter()
    runs = await asyncio.gather(
        *(_paid_requests(http, f"{rig.paywall_url}/reading", mine) for mine in headers)
    )
    elapsed = time.perf_counter() - began
    paid = [sample for samples, _ in runs for sample in samples]
    return {
        "clients": clients,
        "requests_per_s": round(len(paid) / elapsed, 1),
        "p50_ms": round(_percentile(paid, 0.5) * 1000, 3),
        "p99_ms": round(_percentile(paid, 0.99) * 1000, 3),
    }


@dataclass
class _Rig:
    upstream_url: str
    paywall_url: str
    payer: X402Payer
    buyer: Node
    channel_ids: list[bytes]

    async def commitment(
        self, offer: OfferedPayment, resource: dict[str, Any] | None, client: int = 0
    ) -> str:
        made = await self.buyer.commit(self.channel_ids[client], offer.amount)
        payload = {
            "channelId": "0x" + made.channel_id.hex(),
            "hub": made.hub.checksum,
            "payer": self.buyer.address.checksum,
            "total": str(made.total),
            "seq": made.seq,
            "signature": "0x" + made.signature.hex(),
        }
        return payment_header(offer, payload, resource)


@asynccontextmanager
async def _servers(chain: Ledger, clients: int) -> AsyncIterator[_Rig]:
    owner, seller, buyer = chain.dev_accounts()[:3]
    _, hub, token = await deploy_contracts(chain, owner, mint={buyer.address: 10**24})
    upstream = AsgiServer(_upstream, name="upstream")
    upstream_url = await upstream.start()
    proxy = UpstreamProxy(upstream_url)
    with tempfile.TemporaryDirectory(prefix="m2mpay-bench-paywall-") as where:
        seller_node = _node(chain, hub.address, seller, Path(where) / "seller.sqlite3")
        buyer_node = _node(chain, hub.address, buyer, Path(where) / "buyer.sqlite3")
        await seller_node.start()
        await buyer_node.start()
        scheme = ExactEvm(chain, token, seller, NonceBook(Path(where) / "paywall.sqlite3"))
        await scheme.start()
        prices = PriceList.everything(Price(_PRICE, token.address))
        channels = ChannelScheme(seller_node, token.address)
        # As `m2mpay paywall` runs it: settled once the upstream answered below 400.
        paywall = Paywall(proxy, prices, [channels, scheme], settle_on_success=True)
        server = AsgiServer(paywall, name="paywall")
        try:
            channel_ids = []
            for _ in range(clients):
                opened = await buyer_node.open_channel(
                    seller.address, token.address, 10**22, endpoint=seller_node.endpoint
                )
                await _settled(buyer_node, seller_node, opened.channel_id)
                channel_ids.append(opened.channel_id)
            yield _Rig(
                upstream_url,
                await server.start(),
                X402Payer(buyer, _PRICE),
                buyer_node,
                channel_ids,
            )
        finally:
            await server.stop()
            await proxy.aclose()
            await scheme.stop()
            await buyer_node.stop()
            await seller_node.stop()
            await upstream.stop()


def _node(chain: Ledger, hub: Address, key: PrivateKey, store: Path) -> Node:
    return Node(
        key,
        LedgerAccess(chain, hub, key),
        open_store(store),
        transport=WebSocketTransport(port=0),
        config=NodeConfig(),
    )


async def _settled(buyer: Node, seller: Node, channel_id: bytes) -> None:
    """Wait until the seller's node holds the channel open too."""
    for _ in range(1000):
        try:
            if seller.channel(channel_id).phase.value == "open":
                return
        except M2MPayError:
            pass
        await asyncio.sleep(0.01)
    raise M2MPayError("the seller's node never saw the channel open")
