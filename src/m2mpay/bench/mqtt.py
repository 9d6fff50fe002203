"""`m2mpay bench mqtt`: paid live data on a real Mosquitto, seller and buyers in
separate processes.

The seller is a node process with its sessions, its own Mosquitto, the grant keeper,
the feed seller and a publisher standing in for the plug (`m2mpay.bench.feed_seller`);
each buyer is a node process of its own with one channel per subscriber and an MQTT
client per grant (`m2mpay.bench.feed_buyer`); all on an embedded chain this process
hosts.

First `samples` grants are bought one at a time, for the latency from the buyer asking
to its client's accepted subscription; then the rest all together, `concurrency` at a
time, for the rate. Each buys a paid time of its own between `paid_seconds` and
`paid_seconds + stagger_seconds`, so expiries are spread out while the plug publishes;
once every grant has ended (and a little longer), what each client received is held
against what was published and each grant's `paid_until` (`tally`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from m2mpay.bench.feed_seller import write_feed_config
from m2mpay.bench.processes import PeerProcess, running
from m2mpay.bench.rig import PAYER, Progress, narrator, set_up_rig

__all__ = ["Tally", "measure_mqtt", "peak_overlap", "seconds_of", "tally"]

PRICE_PER_SECOND: Final = 10**12
SELLER_KEY: Final = 2
BUYER_KEYS: Final = (PAYER, 3, 4, 5)  # dev accounts that buy (the first is minted by the rig)
DEVICE: Final = "bench-plug"
LINGER_S: Final = 2.0  # readers listen on this long after the last grant ended
# A reader logs in and subscribes this often until its grant is there; readers buying
# together retry less often each (every 2 ms each, fifty flooded the broker the seller
# administers through, and grants starved).
RETRY_MS: Final = 2


def together_retry_ms(concurrency: int) -> int:
    return max(RETRY_MS, concurrency // 2)


def seconds_of(index: int, paid_seconds: int, stagger_seconds: int) -> int:
    """The paid time of the `index`-th grant: spread over the stagger, not in order."""
    return paid_seconds + (index * 7919) % (stagger_seconds + 1)


@dataclass(frozen=True)
class Tally:
    leaked: int  # messages that reached a reader though published after its end + tolerance
    missed: int  # messages published while it was paid (less the tolerance) it never got
    latest_ms: int  # the latest of the leaked ones, after the end (0 without any)
    readers_leaked_to: int


def tally(
    published: Iterable[Sequence[int]],
    readers: Iterable[Mapping[str, Any]],
    paid_until: Mapping[str, int],
    tolerance_ms: int,
) -> Tally:
    """Messages received though published after the reader's `paid_until` plus the
    tolerance, and messages published from its SUBACK to `paid_until` less the
    tolerance that it never received."""
    sent = [(int(n), int(at)) for n, at in published]
    leaked = missed = latest = leaky = 0
    for reader in readers:
        end = paid_until[reader["session"]]
        got = {int(n) for n, _ in reader["received"]}
        late = [int(at) - end for _, at in reader["received"] if int(at) > end + tolerance_ms]
        leaked += len(late)
        leaky += bool(late)
        latest = max([latest, *late])
        start = int(reader["suback_ms"])
        missed += sum(1 for n, at in sent if start <= at <= end - tolerance_ms and n not in got)
    return Tally(leaked, missed, latest, leaky)


def peak_overlap(spans: Iterable[tuple[int, int]]) -> int:
    """The most spans (start, end) open at one moment."""
    edges = sorted(edge for start, end in spans for edge in ((start, 1), (end, -1)))
    peak = open_now = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def _wait_all_ended(seller: PeerProcess, latest_ms: int) -> list[dict[str, Any]]:
    """The grants once none is live (the last paid time is `latest_ms`)."""
    while True:
        grants: list[dict[str, Any]] = (await seller.call({"cmd": "feed_grants"}))["grants"]
        if all(g["phase"] != "live" for g in grants):
            return grants
        wait_s = (latest_ms - time.time_ns() // 1_000_000) / 1000
        await asyncio.sleep(min(5.0, max(0.2, wait_s)))


async def measure_mqtt(
    *,
    subscribers: int = 1_000,
    samples: int = 100,
    paid_seconds: int = 60,
    stagger_seconds: int = 60,
    concurrency: int = 50,
    buyers: int = 2,
    publish_hz: float = 2.0,
    tolerance_ms: int = 250,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = narrator(progress)
    samples = min(samples, subscribers)
    buyers = max(1, min(buyers, len(BUYER_KEYS), subscribers))
    longest = paid_seconds + stagger_seconds
    deposit = PRICE_PER_SECOND * (longest + 10)
    paid = [seconds_of(i, paid_seconds, stagger_seconds) for i in range(subscribers)]
    # The first `samples` one at a time from the first buyer; the rest dealt round.
    shares = [paid[samples:][b::buyers] for b in range(buyers)]
    counts = [len(share) + (samples if b == 0 else 0) for b, share in enumerate(shares)]
    async with set_up_rig(payer_tokens=deposit * counts[0], progress=say) as rig:
        for key, count in zip(BUYER_KEYS[1:buyers], counts[1:], strict=True):
            await rig.token.mint(rig.keys[0], rig.keys[key].address, deposit * count)
        feeds = rig.root / "seller-feed"
        write_feed_config(
            feeds,
            device=DEVICE,
            asset=rig.token.address,
            price_per_hour=3600 * PRICE_PER_SECOND,
            max_seconds=longest,
            publish_hz=publish_hz,
        )
        seller = rig.peer(SELLER_KEY, "seller", sessions=rig.root / "seller-s.sqlite3", feeds=feeds)
        processes = [
            rig.peer(key, f"buyer{key}", sessions=rig.root / f"buyer{key}-s.sqlite3")
            for key in BUYER_KEYS[:buyers]
        ]
        say(f"starting the seller (node, Mosquitto, plug) and {buyers} buyer processes")
        async with running(seller, *processes):
            say(f"opening {subscribers:,} channels, one per subscriber")
            opening = seller.channel_to(rig.token.address, deposit)
            await asyncio.gather(
                *(
                    buyer.call(
                        {"cmd": "open_many", **opening, "count": count, "concurrency": 32},
                        timeout=3600,
                    )
                    for buyer, count in zip(processes, counts, strict=True)
                )
            )
            sold = await seller.call({"cmd": "feed_offer"})
            say(f"buying {samples:,} grants one at a time")
            one_by_one = await processes[0].call(
                {
                    "cmd": "grant_buy",
                    **sold,
                    "seconds": paid[:samples],
                    "concurrency": 1,
                    "retry_ms": RETRY_MS,
                },
                timeout=3600,
            )
            say(f"buying {subscribers - samples:,} more, {concurrency} at a time")
            each = max(1, concurrency // buyers)
            began = time.perf_counter()
            await asyncio.gather(
                *(
                    buyer.call(
                        {
                            "cmd": "grant_buy",
                            **sold,
                            "seconds": share,
                            "concurrency": each,
                            "retry_ms": together_retry_ms(each),
                        },
                        timeout=3600,
                    )
                    for buyer, share in zip(processes, shares, strict=True)
                )
            )
            together_s = time.perf_counter() - began
            node_rss = (await seller.call({"cmd": "rss"}))["rss_bytes"]
            broker_rss = (await seller.call({"cmd": "feed_broker_rss"}))["rss_bytes"]
            latest = time.time_ns() // 1_000_000 + longest * 1000
            say(f"reading while the grants expire, until about {longest} s from now")
            grants = await _wait_all_ended(seller, latest)
            await asyncio.sleep(LINGER_S)
            readers = [
                reader
                for buyer in processes
                for reader in (await buyer.call({"cmd": "grant_readers", "close": True}))["readers"]
            ]
            published = (await seller.call({"cmd": "feed_published"}))["published"]
    paid_until = {g["session"]: int(g["paid_until_ms"]) for g in grants}
    counted = tally(published, readers, paid_until, tolerance_ms)
    after_request = [float(g["grant_ms"]) for g in one_by_one["grants"]]
    latencies = [float(g["grant_from_payment_ms"]) for g in one_by_one["grants"]]
    spans = [(int(r["suback_ms"]), paid_until[r["session"]]) for r in readers]
    return {
        "grant_p50_ms": round(_percentile(latencies, 0.5), 1),
        "grant_p99_ms": round(_percentile(latencies, 0.99), 1),
        "grant_max_ms": round(max(latencies), 1),
        "target_grant_p99_ms": 50,
        "grant_ms_from": "the prepayment leaving the buyer to the SUBACK granting the live topic",
        # Also from the buyer asking for the session: its request and acceptance too.
        "grant_from_request_p50_ms": round(_percentile(after_request, 0.5), 1),
        "grant_from_request_p99_ms": round(_percentile(after_request, 0.99), 1),
        "grant_samples": len(latencies),
        "subscribe_retry_ms": RETRY_MS,
        "grants_per_s": round((subscribers - samples) / together_s, 1) if together_s else 0.0,
        "grants_per_s_concurrency": concurrency,
        "grants_per_s_retry_ms": together_retry_ms(max(1, concurrency // buyers)),
        "subscribers": subscribers,
        "peak_concurrent_subscribers": peak_overlap(spans),
        "paid_seconds": [min(paid), max(paid)],
        "publish_hz": publish_hz,
        "published": len(published),
        "received": sum(len(r["received"]) for r in readers),
        "tolerance_ms": tolerance_ms,
        "leaked_after_expiry": counted.leaked,
        "missed_while_paid": counted.missed,
        "latest_leak_ms": counted.latest_ms,
        "readers_leaked_to": counted.readers_leaked_to,
        "broker_rss_mb": round(broker_rss / 2**20, 1),
        "node_rss_mb": round(node_rss / 2**20, 1),
        "rss_when": "all grants bought, every subscriber connected",
        "buyer_processes": buyers,
        "processes": "seller (node, sessions, grant keeper, plug) and its Mosquitto; buyers "
        "(node, sessions, one MQTT client per grant), each its own process",
        "broker": "mosquitto 2.0 with dynamic security, QoS 1, loopback",
    }
