"""A paywall in front of a plain HTTP service, on the embedded chain, for the paywall tests.

The upstream is a tiny ASGI app on `AsgiServer` that counts what it is asked; the
paywall is `Paywall` over `UpstreamProxy` with the `exact` scheme paying the seller in
the deployment's token, on its own `AsgiServer`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from m2mpay.access.exact import ExactEvm, Reconciled
from m2mpay.access.nonce_book import NonceBook
from m2mpay.access.paywall import Paywall
from m2mpay.access.pricing import Per, Price, PricedRoute, PriceList
from m2mpay.access.proxy import UpstreamProxy
from m2mpay.asgi import AsgiServer
from m2mpay.chain import EmbeddedLedger
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.token import TokenContract
from m2mpay.client.x402 import X402Payer
from m2mpay.crypto import PrivateKey

UNIT = 10**18
PRICE = 3 * 10**15
BODY = b"the answer is 42\n"
FAILURE = b"the upstream broke\n"


@dataclass
class Upstream:
    """A plain HTTP service: `/data` (a fixed body), `/ticks` (a chunk every 50 ms, never
    ending), `/big` (1,000 bytes), `/chunked` (a body of no declared length), `/fails`
    (500, its own error); it counts each request by path."""

    seen: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.seen.append(f"{scope['method']} {scope['path']}")
        headers = [(b"content-type", b"text/plain")]
        if scope["path"] == "/ticks":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            tick = 0
            while True:
                await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
                tick += 1
                await asyncio.sleep(0.05)
        if scope["path"] == "/chunked":  # no declared length: sent in chunks
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": BODY})
            return
        body = b"x" * 1000 if scope["path"] == "/big" else BODY
        status = 200
        if scope["path"] == "/fails":
            body, status = FAILURE, 500
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if scope["method"] != "HEAD":
            await send({"type": "http.response.body", "body": body})
        else:
            await send({"type": "http.response.body", "body": b""})

    def gets(self) -> list[str]:
        return [seen for seen in self.seen if seen.startswith("GET")]


@dataclass(eq=False)
class Rig:
    ledger: Ledger
    token: TokenContract
    seller: PrivateKey
    buyer: PrivateKey
    upstream: Upstream
    upstream_url: str
    url: str
    scheme: ExactEvm
    book_path: Path
    paywall: Paywall
    proxy: UpstreamProxy

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.paywall(scope, receive, send)  # the paywall of the process running now

    async def restart(self) -> Reconciled:
        """The paywall as a new process finds it: its book reopened, reconciled with the
        chain, a token binding that knows nothing of the last one."""
        await self.scheme.stop()
        token = TokenContract(self.ledger, self.token.address)
        self.scheme = ExactEvm(self.ledger, token, self.seller, NonceBook(self.book_path))
        reconciled = await self.scheme.start()
        self.paywall = proxied(self.proxy, routes(token), self.scheme)
        return reconciled

    def payer(self, max_price: int = PRICE, key: PrivateKey | None = None) -> X402Payer:
        return X402Payer(key or self.buyer, max_price)

    def client(self, payer: X402Payer | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, auth=payer, timeout=30)

    async def balances(self) -> tuple[int, int]:
        return (
            await self.token.balance_of(self.seller.address),
            await self.token.balance_of(self.buyer.address),
        )


def routes(token: TokenContract) -> PriceList:
    asset = token.address
    return PriceList(
        [
            PricedRoute("/big", Price(10**12, asset, Per.BYTE)),
            PricedRoute("/chunked", Price(10**12, asset, Per.BYTE)),
            PricedRoute("/ticks", Price(10**12, asset, Per.SECOND, seconds=1)),
            PricedRoute("/*", Price(PRICE, asset)),
        ]
    )


def proxied(proxy: UpstreamProxy, prices: PriceList, scheme: ExactEvm) -> Paywall:
    """The paywall as `m2mpay paywall` builds it in front of an upstream."""
    return Paywall(proxy, prices, [scheme], size_of=proxy.size_of, settle_on_success=True)


@asynccontextmanager
async def paywall_rig(data_dir: Path, ledger: Ledger | None = None) -> AsyncIterator[Rig]:
    async with _ledger(ledger) as chain:
        owner, seller, buyer = chain.dev_accounts()[:3]
        _, _, token = await deploy_contracts(chain, owner, mint={buyer.address: 1_000 * UNIT})
        upstream = Upstream()
        upstream_server = AsgiServer(upstream, name="upstream")
        upstream_url = await upstream_server.start()
        proxy = UpstreamProxy(upstream_url)
        book = data_dir / "paywall.sqlite3"
        scheme = ExactEvm(chain, token, seller, NonceBook(book))
        await scheme.start()
        paywall = proxied(proxy, routes(token), scheme)
        rig = Rig(
            chain, token, seller, buyer, upstream, upstream_url, "", scheme, book, paywall, proxy
        )
        server = AsgiServer(rig, name="paywall")
        rig.url = await server.start()
        try:
            yield rig
        finally:
            await server.stop()
            await proxy.aclose()
            await rig.scheme.stop()
            await upstream_server.stop()


@asynccontextmanager
async def _ledger(given: Ledger | None) -> AsyncIterator[Ledger]:
    if given is not None:
        yield given
        return
    async with EmbeddedLedger() as ledger:
        yield ledger


def decoded(header: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(base64.b64decode(header))
    return found


def encoded(value: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()
