"""`m2mpay paywall` as its own process in front of a plain HTTP service, on an embedded
chain served over JSON-RPC, and `m2mpay fetch` paying it as people run it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from m2mpay.asgi import AsgiServer
from m2mpay.bench.daemons import NodeProcess
from m2mpay.chain import EmbeddedLedger
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.rpc_server import EmbeddedLedgerServer
from m2mpay.chain.token import TokenContract
from m2mpay.crypto import PrivateKey
from tests.access.paywall_rig import BODY, UNIT, Upstream

PRICE = 5 * 10**15


@dataclass
class Sold:
    token: TokenContract
    seller: PrivateKey
    buyer: PrivateKey
    upstream: Upstream
    paywall: NodeProcess


@pytest.fixture
async def sold(tmp_path: Path) -> AsyncIterator[Sold]:
    async with EmbeddedLedger() as ledger:
        rpc = EmbeddedLedgerServer(ledger)
        rpc_url = await rpc.start()
        owner, seller, buyer = ledger.dev_accounts()[:3]
        _, _, token = await deploy_contracts(ledger, owner, mint={buyer.address: 10 * UNIT})
        upstream = Upstream()
        upstream_server = AsgiServer(upstream, name="upstream")
        upstream_url = await upstream_server.start()
        paywall = NodeProcess(
            tmp_path / "paywall",
            "--upstream", upstream_url, "--price", str(PRICE), "--asset", token.address.checksum,
            "--path", "/data", "--rpc-url", rpc_url,
            command=("paywall",),
        )  # fmt: skip
        paywall.env["M2MPAY_PRIVATE_KEY"] = seller.secret.hex()
        try:
            # The paywall asks the chain (in this event loop) as it starts: wait off the loop.
            await asyncio.to_thread(paywall.start)
            yield Sold(token, seller, buyer, upstream, paywall)
        finally:
            await asyncio.to_thread(paywall.stop)
            await upstream_server.stop()
            await rpc.stop()


async def _fetch(*args: str, key: PrivateKey) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "M2MPAY_PRIVATE_KEY": key.secret.hex(), "COLUMNS": "400"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "m2mpay", "fetch", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


async def test_fetch_pays_the_paywall_process_exactly_its_price(sold: Sold) -> None:
    ready = sold.paywall.ready
    assert ready["payTo"] == sold.seller.address.checksum
    assert ready["price"] == str(PRICE)
    before = await sold.token.balance_of(sold.seller.address)
    done = await _fetch(f"{ready['url']}/data", "--max-price", str(PRICE), "--json", key=sold.buyer)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == 200
    assert answer["body"] == BODY.decode()
    [paid] = answer["paid"]
    assert (paid["amount"], paid["payTo"]) == (str(PRICE), sold.seller.address.checksum)
    assert paid["transaction"].startswith("0x")
    assert await sold.token.balance_of(sold.seller.address) == before + PRICE
    assert sold.upstream.gets() == ["GET /data"]
    # An unpriced path passes through free: only --path is sold.
    free = await _fetch(f"{ready['url']}/other", "--max-price", "0", key=sold.buyer)
    assert free.returncode == 0, free.stderr
    assert free.stdout == BODY.decode()
    assert "paid nothing" in free.stderr


async def test_fetch_refuses_above_its_maximum_and_says_how_to_fix_it(sold: Sold) -> None:
    before = await sold.token.balance_of(sold.buyer.address)
    url = f"{sold.paywall.ready['url']}/data"
    done = await _fetch(url, "--max-price", str(PRICE - 1), key=sold.buyer)
    assert done.returncode == 1
    assert f"above the maximum {PRICE - 1}" in done.stderr
    assert "raise --max-price" in done.stderr
    assert await sold.token.balance_of(sold.buyer.address) == before
    assert sold.upstream.gets() == []


def test_fetch_loads_no_chain() -> None:
    # A device that pays over HTTP signs its payment; it needs neither py-evm nor web3.
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from m2mpay.cli import app\n"
        "CliRunner().invoke(app, ['fetch', '--help'])\n"
        "heavy = ('eth', 'web3', 'm2mpay.chain', 'm2mpay.access')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
