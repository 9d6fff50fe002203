"""`m2mpay paywall` SIGKILLed in the middle of settling an `exact` payment, as a real
process: the chain it talks to (an embedded chain served over JSON-RPC by this test)
holds the settling transaction, so the kill lands exactly before the transaction is
applied, or after it is applied but before the paywall hears of it. The process started
again on the same data dir reconciles its book at start: nothing is charged twice, and
the request is served at most once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from m2mpay.asgi import AsgiServer
from m2mpay.bench.daemons import NodeProcess
from m2mpay.chain import EmbeddedLedger
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.rpc_server import EmbeddedLedgerServer
from m2mpay.chain.token import TokenContract
from m2mpay.client.x402 import X402Payer, read_payment_required
from m2mpay.crypto import PrivateKey
from tests.access.paywall_rig import UNIT, Upstream

PRICE = 7 * 10**15


class HeldChain(EmbeddedLedgerServer):
    """Holds the next raw transaction it is sent, before applying it (`apply=False`) or
    after (`apply=True`), never answering; `held` is set once it holds one."""

    def __init__(self, ledger: EmbeddedLedger) -> None:
        super().__init__(ledger)
        self.hold: bool | None = None  # None: pass everything
        self.held = asyncio.Event()
        self.released = asyncio.Event()

    async def _one(self, request: Any, from_page: bool) -> dict[str, Any]:
        method = request.get("method") if isinstance(request, dict) else None
        if method != "eth_sendRawTransaction" or self.hold is None:
            return await super()._one(request, from_page)
        apply, self.hold = self.hold, None
        if apply:
            await super()._one(request, from_page)
        self.held.set()
        await self.released.wait()  # the caller is dead by then: the answer goes nowhere
        return {
            "jsonrpc": "2.0",
            "id": request.get("id"),
            "error": {"code": -32000, "message": "held"},
        }


@dataclass
class Sold:
    chain: HeldChain
    token: TokenContract
    seller: PrivateKey
    buyer: PrivateKey
    upstream: Upstream
    argv: tuple[str, ...]
    data_dir: Path

    async def start(self) -> NodeProcess:
        paywall = NodeProcess(self.data_dir, *self.argv, command=("paywall",))
        paywall.env["M2MPAY_PRIVATE_KEY"] = self.seller.secret.hex()
        await asyncio.to_thread(paywall.start)
        return paywall

    async def balances(self) -> tuple[int, int]:
        return (
            await self.token.balance_of(self.seller.address),
            await self.token.balance_of(self.buyer.address),
        )


@pytest.fixture
async def sold(tmp_path: Path) -> AsyncIterator[Sold]:
    async with EmbeddedLedger() as ledger:
        rpc = HeldChain(ledger)
        rpc_url = await rpc.start()
        owner, seller, buyer = ledger.dev_accounts()[:3]
        _, _, token = await deploy_contracts(ledger, owner, mint={buyer.address: 10 * UNIT})
        upstream = Upstream()
        upstream_server = AsgiServer(upstream, name="upstream")
        upstream_url = await upstream_server.start()
        argv = ("--upstream", upstream_url, "--price", str(PRICE),
                "--asset", token.address.checksum, "--rpc-url", rpc_url)  # fmt: skip
        try:
            yield Sold(rpc, token, seller, buyer, upstream, argv, tmp_path / "paywall")
        finally:
            await upstream_server.stop()
            await rpc.stop()


async def _payment(sold: Sold, url: str) -> str:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{url}/data")
    resource, [offer] = read_payment_required(answer.headers["PAYMENT-REQUIRED"])
    return X402Payer(sold.buyer, PRICE).pay(offer, resource)


async def _killed_while_settling(sold: Sold, *, applied: bool) -> str:
    """Pay through a paywall process that is SIGKILLed once its transaction is held."""
    paywall = await sold.start()
    try:
        header = await _payment(sold, paywall.url)
        sold.chain.hold = applied
        async with httpx.AsyncClient(timeout=60) as http:
            paying = asyncio.ensure_future(
                http.get(f"{paywall.url}/data", headers={"PAYMENT-SIGNATURE": header})
            )
            await asyncio.wait_for(sold.chain.held.wait(), 60)
            assert paywall.process is not None
            paywall.process.kill()
            await asyncio.to_thread(paywall.process.wait)
            sold.chain.released.set()
            with pytest.raises(httpx.HTTPError):
                await paying
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(paywall.stop)
    return header


async def test_killed_before_its_transaction_nothing_is_charged_and_it_pays_once(
    sold: Sold,
) -> None:
    before = await sold.balances()
    header = await _killed_while_settling(sold, applied=False)
    assert await sold.balances() == before
    paywall = await sold.start()
    try:
        assert paywall.ready["reconciled"] == {"settled": 0, "forgotten": 1}
        async with httpx.AsyncClient(timeout=60) as http:
            url = f"{paywall.url}/data"
            first = await http.get(url, headers={"PAYMENT-SIGNATURE": header})
            again = await http.get(url, headers={"PAYMENT-SIGNATURE": header})
        assert (first.status_code, again.status_code) == (200, 402)
    finally:
        await asyncio.to_thread(paywall.stop)
    assert await sold.balances() == (before[0] + PRICE, before[1] - PRICE)
    # Asked by the killed process (its answer never left it), then by the paid request;
    # the replay is refused before the upstream is asked.
    assert sold.upstream.gets() == ["GET /data"] * 2


async def test_killed_after_its_transaction_it_is_charged_once_and_never_served_again(
    sold: Sold,
) -> None:
    before = await sold.balances()
    header = await _killed_while_settling(sold, applied=True)
    assert await sold.balances() == (before[0] + PRICE, before[1] - PRICE)
    paywall = await sold.start()
    try:
        assert paywall.ready["reconciled"] == {"settled": 1, "forgotten": 0}
        async with httpx.AsyncClient(timeout=60) as http:
            again = await http.get(f"{paywall.url}/data", headers={"PAYMENT-SIGNATURE": header})
        assert again.status_code == 402
    finally:
        await asyncio.to_thread(paywall.stop)
    assert await sold.balances() == (before[0] + PRICE, before[1] - PRICE)
    # Asked once by the killed process, whose answer never left it; never again.
    assert sold.upstream.gets() == ["GET /data"]
