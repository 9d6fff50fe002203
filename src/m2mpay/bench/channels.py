"""`m2mpay bench channels`: resident memory per open channel in one node.

The measured node runs in a process of its own, so the chain and the peer do not
count: its resident memory with no channel is subtracted from its memory with
`channels` open channels (after a garbage collection both times).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from m2mpay.bench.processes import PeerProcess
from m2mpay.chain.anvil import AnvilNode
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.shared import connect_ledger

__all__ = ["measure_channels"]

Progress = Callable[[str], None]


async def measure_channels(
    *, channels: int = 10_000, concurrency: int = 64, progress: Progress | None = None
) -> dict[str, Any]:
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="m2mpay-bench-") as tmp, AnvilNode() as anvil:
        root = Path(tmp)
        say(f"Anvil at {anvil.url}; deploying the contracts")
        ledger = await connect_ledger(rpc_url=anvil.url)
        try:
            keys = ledger.dev_accounts()
            _, hub, token = await deploy_contracts(
                ledger, keys[0], mint={keys[1].address: channels * 10}
            )
            where = {"hub": hub.address, "rpc_url": anvil.url}
            peer = PeerProcess(key=2, store=root / "peer.sqlite3", **where)  # type: ignore[arg-type]
            node = PeerProcess(key=1, store=root / "node.sqlite3", **where)  # type: ignore[arg-type]
            await peer.start()
            await node.start()
            try:
                empty = (await node.call({"cmd": "rss"}))["rss_bytes"]
                say(f"opening {channels:,} channels ({concurrency} at a time)")
                opened = await node.call(
                    {
                        "cmd": "open_many",
                        "peer": str(peer.address),
                        "endpoint": peer.endpoint,
                        "asset": str(token.address),
                        "deposit": "1",
                        "count": channels,
                        "concurrency": concurrency,
                    },
                    timeout=3600,
                )
                full = (await node.call({"cmd": "rss"}))["rss_bytes"]
                counted = (await node.call({"cmd": "channels"}))["count"]
            finally:
                await node.stop()
                await peer.stop()
        finally:
            await ledger.stop()
    per_channel = (full - empty) / channels
    return {
        "channels": channels,
        "channels_in_node": counted,
        "rss_empty_mb": round(empty / 2**20, 1),
        "rss_full_mb": round(full / 2**20, 1),
        "bytes_per_channel": round(per_channel),
        "limit_bytes_per_channel": 4096,
        "open_seconds": round(opened["seconds"], 1),
        "opens_per_s": round(channels / opened["seconds"], 1),
        "ledger": "anvil (separate process)",
    }
