"""`m2mpay bench pay`: payment throughput and latency between two node processes.

Two nodes in two processes, over WebSocket on loopback, each with its durable
SQLite store, stream payments on one channel. Latency is from `pay` to the
payee's durable acknowledgement reaching the payer. `crypto_limit_per_s` is one
signature plus one recovery of the same message in a tight loop on one core,
measured in the same run: the bound a payment protocol needing both cannot beat.
"""

from __future__ import annotations

import time
from typing import Any

from m2mpay.bench.processes import running
from m2mpay.bench.rig import PAYER, Progress, narrator, set_up_rig
from m2mpay.crypto import PrivateKey, recover_signer

__all__ = ["measure_crypto_limit", "measure_pay"]


def measure_crypto_limit(seconds: float = 1.5) -> dict[str, float]:
    """Sign and recover one 32-byte digest repeatedly; rates per second on this core."""
    key = PrivateKey.generate()
    digest = bytes(range(32))
    count = 0
    sign_time = recover_time = 0.0
    clock = time.perf_counter
    deadline = clock() + seconds
    while clock() < deadline:
        t0 = clock()
        signature = key.sign_digest(digest)
        t1 = clock()
        recover_signer(digest, signature)
        t2 = clock()
        sign_time += t1 - t0
        recover_time += t2 - t1
        count += 1
    return {
        "crypto_limit_per_s": count / (sign_time + recover_time),
        "sign_us": sign_time / count * 1e6,
        "recover_us": recover_time / count * 1e6,
    }


async def measure_pay(
    *,
    payments: int = 100_000,
    window: int = 512,
    codec: str = "cbor",
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = narrator(progress)
    deposit = payments * 2 + 10_000
    async with set_up_rig(payer_tokens=deposit * 2, progress=say) as rig:
        payee = rig.peer(2, "payee", window=window, codec=codec)
        payer = rig.peer(PAYER, "payer", window=window, codec=codec)
        say("starting the payee and payer processes")
        async with running(payee, payer):
            opened = await payer.call(
                {"cmd": "open", **payee.channel_to(rig.token.address, deposit)}
            )
            channel = opened["channel"]
            say("warming up")
            await payer.call({"cmd": "stream", "channel": channel, "count": 2000, "amount": 1})
            # The payments the payee must have: warm-up, stream and latency runs.
            expected = 2000 + payments + 1000
            say(f"streaming {payments:,} payments")
            result = await payer.call(
                {"cmd": "stream", "channel": channel, "count": payments, "amount": 1}
            )
            say("measuring unloaded latency (one payment at a time)")
            unloaded = await payer.call(
                {"cmd": "latency", "channel": channel, "count": 1000, "amount": 1}
            )
            received = await payee.call({"cmd": "info", "channel": channel})
            say("measuring the crypto limit")
            crypto = measure_crypto_limit()
            say("closing the channel")
            closed = await payer.call({"cmd": "close", "channel": channel})
    rate = result["payments_per_s"]
    return {
        "payments": payments,
        "payments_per_s": round(rate, 1),
        "p50_ms": round(result["p50_ms"], 3),
        "p99_ms": round(result["p99_ms"], 3),
        "unloaded_p50_ms": round(unloaded["p50_ms"], 3),
        "unloaded_p99_ms": round(unloaded["p99_ms"], 3),
        "crypto_limit_per_s": round(crypto["crypto_limit_per_s"], 1),
        "ratio_to_crypto_limit": round(rate / crypto["crypto_limit_per_s"], 3),
        "target_ratio": 0.4,
        "sign_us": round(crypto["sign_us"], 1),
        "recover_us": round(crypto["recover_us"], 1),
        "window": window,
        "codec": codec,
        "payee_received_total": received["received_total"],
        "payee_has_every_payment": int(received["received_total"]) == expected,
        "closed_phase": closed["phase"],
        "transport": "websocket, loopback, two processes",
        "store": "sqlite (WAL, synchronous=FULL)",
        "reference": {"lightning_payments_per_s": "33-89", "raiden_payments_per_s": 164},
    }
