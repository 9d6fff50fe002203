"""`m2mpay bench explorer`: a page of the explorer's blocks over HTTP on a long chain.

One `m2mpay node` process on its own embedded chain; the chain is grown to `blocks`
blocks with Anvil's `anvil_mine` on the JSON-RPC endpoint the node serves its dev chain
on (empty blocks, a thousand a request), then `GET /v1/explorer/blocks` (one page of
`page` blocks from the head) is asked `requests` times, one after the other, on one
keep-alive connection. Latency is request to answer, as a client sees it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import aiohttp

from m2mpay.bench.daemons import NodeProcess
from m2mpay.bench.rig import Progress, narrator
from m2mpay.chain.rpc_server import MAX_MINED_AT_ONCE
from m2mpay.errors import M2MPayError

__all__ = ["grow_chain", "measure_explorer"]

_RPC_FILE: Final = "chain.rpc"  # where a node hosting its embedded chain says it serves it


async def grow_chain(rpc_url: str, blocks: int) -> int:
    """Mine empty blocks on a dev chain's JSON-RPC endpoint until it holds `blocks`
    blocks after genesis; the head's number after."""
    async with aiohttp.ClientSession() as http:

        async def rpc(method: str, *params: Any) -> Any:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
            async with http.post(rpc_url, json=body) as response:
                answer: dict[str, Any] = await response.json()
            if "error" in answer:
                raise M2MPayError(f"{method}: {answer['error']}")
            return answer.get("result")

        head = int(await rpc("eth_blockNumber"), 16)
        while head < blocks:
            await rpc("anvil_mine", hex(min(MAX_MINED_AT_ONCE, blocks - head)))
            head = int(await rpc("eth_blockNumber"), 16)
        return head


def _percentile(sorted_ms: list[float], share: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(share * len(sorted_ms)))]


async def measure_explorer(
    *,
    blocks: int = 10_000,
    page: int = 25,
    requests: int = 200,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = narrator(progress)
    with tempfile.TemporaryDirectory(prefix="m2mpay-bench-") as tmp:
        data_dir = Path(tmp) / "node"
        data_dir.mkdir()
        node = NodeProcess(data_dir, "--no-mqtt")
        node.start()
        try:
            rpc_url = (data_dir / _RPC_FILE).read_text().strip()
            say(f"mining up to {blocks:,} blocks on the node's chain")
            started = time.perf_counter()
            head = await grow_chain(rpc_url, blocks)
            mined_s = time.perf_counter() - started
            headers = {"Authorization": f"Bearer {node.ready['api_token']}"}
            params = {"limit": str(page)}
            say(f"{requests} pages of {page} blocks from block {head:,}")
            timings: list[float] = []
            heads: list[float] = []
            async with aiohttp.ClientSession(node.url, headers=headers) as http:
                for _ in range(requests + 5):
                    began = time.perf_counter()
                    async with http.get("/v1/explorer/blocks", params=params) as response:
                        heads.append((time.perf_counter() - began) * 1000)
                        body = await response.json()
                    timings.append((time.perf_counter() - began) * 1000)
                    if response.status != 200 or len(body["blocks"]) != page:
                        raise M2MPayError(f"GET /v1/explorer/blocks: {response.status} {body}")
            measured = sorted(timings[5:])  # the first few warm the connection and caches
            headed = sorted(heads[5:])
        finally:
            node.stop()
    return {
        "blocks": head,
        "page": page,
        "requests": requests,
        "mined_s": round(mined_s, 1),
        "explorer_page_ms": round(statistics.median(measured), 2),
        "explorer_page_p99_ms": round(_percentile(measured, 0.99), 2),
        # Until the answer's head: the node's work; the rest is the body's way to the client.
        "explorer_page_head_ms": round(statistics.median(headed), 2),
    }
