"""`m2mpay bench api`: payments through the node's HTTP API.

Two `m2mpay node` daemons in their own processes on one embedded chain (the first
hosts it); the bench opens a channel from the first to the second through the API,
then `concurrency` clients on HTTP/1.1 keep-alive connections post payments one
after the other, each answered once the payee holds the payment durably (the API's
default). Latency is request to answer, as a client sees it.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from m2mpay.bench.daemons import NodeProcess
from m2mpay.bench.rig import Progress, narrator
from m2mpay.errors import M2MPayError

__all__ = ["measure_api"]


async def _check(response: aiohttp.ClientResponse) -> dict[str, Any]:
    body: dict[str, Any] = await response.json()
    if response.status >= 300:
        raise M2MPayError(f"{response.method} {response.url.path}: {response.status} {body}")
    return body


async def _received_total(payee: NodeProcess, channel_id: str, sent_total: str) -> str:
    """What the payee holds, once it holds all that was sent (no-wait answers run ahead)."""
    headers = {"Authorization": f"Bearer {payee.ready['api_token']}"}
    async with aiohttp.ClientSession(payee.url, headers=headers) as http:
        deadline = time.monotonic() + 10.0
        while True:
            view = await _check(await http.get(f"/v1/channels/{channel_id}"))
            received = str(view["received_total"])
            if received == sent_total:
                return received
            if time.monotonic() > deadline:
                raise M2MPayError(f"payee holds {received}, payer sent {sent_total}")
            await asyncio.sleep(0.05)


async def measure_api(
    *,
    payments: int = 20_000,
    concurrency: int = 8,
    wait: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = narrator(progress)
    with tempfile.TemporaryDirectory(prefix="m2mpay-bench-") as tmp:
        root = Path(tmp)
        chain = ("--chain-dir", str(root / "chain"))
        payer = NodeProcess(root / "payer", *chain)
        payee = NodeProcess(root / "payee", *chain)
        say("starting two node daemons on one embedded chain")
        payer.start()
        try:
            payee.start()
            try:
                return await _run(payer, payee, payments, concurrency, wait, say)
            finally:
                payee.stop()
        finally:
            payer.stop()


async def _run(
    payer: NodeProcess,
    payee: NodeProcess,
    payments: int,
    concurrency: int,
    wait: bool,
    say: Progress,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {payer.ready['api_token']}"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(payer.url, headers=headers, connector=connector) as http:
        await _check(await http.post("/v1/wallet/faucet", json={}))
        say("opening a channel through the API")
        opened = await _check(
            await http.post(
                "/v1/channels",
                json={
                    "peer": payee.ready["address"],
                    "endpoint": payee.ready["peer_endpoint"],
                    "deposit": str(10**18),
                },
            )
        )
        path = f"/v1/channels/{opened['channel_id']}/payments"
        body = {"amount": "1", "wait": wait}
        latencies: list[float] = []
        clock = time.perf_counter

        async def client(count: int, record: bool) -> None:
            for _ in range(count):
                started = clock()
                async with http.post(path, json=body) as response:
                    await _check(response)
                if record:
                    latencies.append(clock() - started)

        say("warming up")
        await asyncio.gather(*(client(100, False) for _ in range(concurrency)))
        say(f"{payments:,} payments, {concurrency} clients on keep-alive connections")
        began = clock()
        share, rest = divmod(payments, concurrency)
        await asyncio.gather(*(client(share + (i < rest), True) for i in range(concurrency)))
        elapsed = clock() - began
        channel = await _check(await http.get(f"/v1/channels/{opened['channel_id']}"))
        received = await _received_total(payee, opened["channel_id"], channel["sent_total"])
    latencies.sort()
    return {
        "payments": payments,
        "payments_per_s": round(payments / elapsed, 1),
        "target_payments_per_s": 1_000,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "target_p99_ms": 10,
        "concurrency": concurrency,
        "answered_when": "payee holds it durably" if wait else "signed and queued",
        "sent_total": channel["sent_total"],
        "received_total": received,
        "transport": "HTTP/1.1 keep-alive on loopback (uvicorn, httptools)",
    }
