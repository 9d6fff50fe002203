"""`m2mpay bench channels`: resident memory per open channel in one node.

The measured node runs in a process of its own, so the chain and the peer do not
count: its resident memory with no channel is subtracted from its memory with
`channels` open channels (after a garbage collection both times).
"""

from __future__ import annotations

from typing import Any

from m2mpay.bench.processes import running
from m2mpay.bench.rig import PAYER, Progress, narrator, set_up_rig
from m2mpay.chain.anvil import AnvilNode

__all__ = ["measure_channels"]


async def measure_channels(
    *, channels: int = 10_000, concurrency: int = 64, progress: Progress | None = None
) -> dict[str, Any]:
    say = narrator(progress)
    with AnvilNode() as anvil:
        say(f"Anvil at {anvil.url}; deploying the contracts")
        async with set_up_rig(payer_tokens=channels * 10, rpc_url=anvil.url) as rig:
            peer, node = rig.peer(2, "peer"), rig.peer(PAYER, "node")
            async with running(peer, node):
                empty = (await node.call({"cmd": "rss"}))["rss_bytes"]
                say(f"opening {channels:,} channels ({concurrency} at a time)")
                opened = await node.call(
                    {
                        "cmd": "open_many",
                        **peer.channel_to(rig.token.address, 1),
                        "count": channels,
                        "concurrency": concurrency,
                    },
                    timeout=3600,
                )
                full = (await node.call({"cmd": "rss"}))["rss_bytes"]
                counted = (await node.call({"cmd": "channels"}))["count"]
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
