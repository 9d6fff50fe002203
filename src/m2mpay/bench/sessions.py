"""`m2mpay bench sessions`: many concurrent metered sessions between two node processes.

A seller and a buyer, each a node in its own process with its own SQLite stores,
over WebSocket on loopback, on an embedded chain the bench hosts. The buyer opens
one channel per session (a channel runs one session at a time), then runs them
all at once against the seller's offer; simulated meters deliver `rate` units a
second each. Throughput counts units delivered and reported while every session
runs; exposure is sampled on both sides (see `m2mpay.bench.session_peer`).
"""

from __future__ import annotations

from typing import Any

from m2mpay.bench.processes import running
from m2mpay.bench.rig import PAYER, Progress, narrator, set_up_rig

__all__ = ["measure_sessions"]

PRICE = 10**12  # token units per unit of the service


async def measure_sessions(
    *,
    sessions: int = 1_000,
    seconds: float = 30.0,
    rate: float = 8.0,
    window: int = 20,
    batch: int = 5,
    leader: str = "deliverer",
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = narrator(progress)
    deposit = int(rate * (seconds + 60) * PRICE * 2) + window * PRICE
    async with set_up_rig(payer_tokens=deposit * sessions, progress=say) as rig:
        seller = rig.peer(2, "seller", sessions=rig.root / "seller-s.sqlite3")
        buyer = rig.peer(PAYER, "buyer", sessions=rig.root / "buyer-s.sqlite3")
        say("starting the seller and buyer processes")
        async with running(seller, buyer):
            say(f"opening {sessions:,} channels, one per session")
            opened = await buyer.call(
                {
                    "cmd": "open_many",
                    **seller.channel_to(rig.token.address, deposit),
                    "count": sessions,
                    "concurrency": 64,
                },
                timeout=3600,
            )
            offer = await seller.call(
                {
                    "cmd": "session_offer",
                    "asset": str(rig.token.address),
                    "price": str(PRICE),
                    "window": window,
                    "batch": batch,
                    "rate": rate,
                    "leader": leader,
                }
            )
            say(f"running {sessions:,} sessions for {seconds:g} s at {rate:g} units/s each")
            bought = await buyer.call(
                {
                    "cmd": "session_buy",
                    "offer": offer["offer"],
                    "count": sessions,
                    "seconds": seconds,
                },
                timeout=seconds + 1800,
            )
            sold = await seller.call({"cmd": "session_stats"})
            rss_seller = (await seller.call({"cmd": "rss"}))["rss_bytes"]
            rss_buyer = (await buyer.call({"cmd": "rss"}))["rss_bytes"]
    exposure = max(int(bought["max_exposure_units"]), int(sold["max_exposure_units"]))
    return {
        "sessions": sessions,
        "seconds": round(bought["seconds"], 1),
        "units": bought["units"],
        "units_per_s": round(bought["units_per_s"], 1),
        "target_units_per_s": 5_000,
        "offered_units_per_s": round(rate * sessions, 1),
        "max_exposure_units": exposure,
        "max_exposure_units_seller": sold["max_exposure_units"],
        "max_exposure_units_buyer": bought["max_exposure_units"],
        "window": window,
        "batch": batch,
        "leader": leader,
        "rss_mb_seller": round(rss_seller / 2**20, 1),
        "rss_mb_buyer": round(rss_buyer / 2**20, 1),
        "limit_rss_mb": 300,
        "countersigned": bought["countersigned"],
        "session_start_seconds": round(bought["start_seconds"], 1),
        "channel_open_seconds": round(opened["seconds"], 1),
        "transport": "websocket, loopback, two processes",
        "store": "sqlite (WAL, synchronous=FULL)",
    }
