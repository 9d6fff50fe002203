"""`m2mpay bench watcher`: update throughput, dispute latency and memory of a watcher.

The watcher runs in its own process (`python -m m2mpay.cli.watcher serve`), on the
embedded chain hosted by this process through the shared data dir, with a SQLite
store. This process then

1. registers `channels` channels for party b over HTTP (one signed registration each),
   none of them opened yet: a registration may come before the open;
2. opens `opened` of them on chain (approve once, then one `open` each); the others are
   never opened;
3. submits `updates_per_channel` newer proofs signed by party a for every channel,
   over keep-alive connections with `concurrency` requests in flight: `updates_per_s`
   counts accepted (durable) updates over the wall time of this phase;
4. has party a close every opened channel at once, claiming it paid nothing, and
   waits for the watcher to challenge each. `dispute_latency_ms` runs from the close's
   receipt reaching this process (which hosts the chain: the embedded chain mines a
   transaction as it arrives, so that is its mining time plus a poll of at most 1 ms)
   to the challenge's receipt reaching the watcher (`mined_at_ms` of its dispute
   record), both on this machine's wall clock. `defended` counts channels whose
   stored state on chain records the newest total afterwards;
5. reads the watcher process's resident memory (VmRSS) and stops it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from m2mpay.bench.processes import ChildProcess, flags
from m2mpay.bench.rig import PAYER, Progress, Rig, narrator, set_up_rig
from m2mpay.chain.events import ChannelClosing, decode_hub_event
from m2mpay.chain.hub import ChannelHub, Closing, OnchainChannel
from m2mpay.chain.shared import connect_ledger
from m2mpay.chain.token import TokenContract
from m2mpay.crypto import Address, PrivateKey, Signature
from m2mpay.errors import M2MPayError
from m2mpay.watcher_client.client import WatcherClient

__all__ = ["WatcherProcess", "measure_watcher", "process_rss_bytes"]


def process_rss_bytes(pid: int) -> int:
    """Resident memory of process `pid`, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class WatcherProcess(ChildProcess):
    """`m2mpay watcher serve --json` as a child process; `start` returns its ready line."""

    def __init__(
        self,
        *,
        hub: Address | None,
        store: Path | None,
        data_dir: Path | None = None,
        rpc_url: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        argv = [sys.executable, "-m", "m2mpay.cli.watcher", "serve", "--json", "--port", "0"]
        # Without a hub or a store: the data dir's deployments.json and watcher.sqlite3.
        argv += flags(hub=hub, store=store, data_dir=data_dir, rpc_url=rpc_url)
        super().__init__([*argv, *extra], kept_lines=200)
        self.url = ""
        self.address: Address | None = None

    def log_lines(self) -> list[str]:
        """The last lines the watcher logged (stderr)."""
        return list(self._stderr)

    async def start(self, timeout: float = 60.0) -> dict[str, Any]:
        await self._spawn(stdin=asyncio.subprocess.DEVNULL)
        try:
            line = await self._line(timeout)
        except TimeoutError:
            await self.kill()
            raise M2MPayError(f"watcher not ready after {timeout:g} s") from None
        if not line:
            raise M2MPayError("watcher process exited:\n" + self.stderr_tail())
        ready: dict[str, Any] = orjson.loads(line)
        self.url, self.address = ready["url"], Address(ready["address"])
        return ready

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful stop) and the exit code; SIGKILL if it does not stop."""
        if self._process is None:
            return 0
        if self._process.returncode is not None:
            return self._process.returncode
        self._process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                return await self._process.wait()
        except TimeoutError:
            await self.kill()
            return -signal.SIGKILL


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _in_parallel(jobs: list[Any], concurrency: int, run: Callable[[Any], Any]) -> None:
    """Run `run(job)` for every job, `concurrency` at a time."""

    async def worker(mine: list[Any]) -> None:
        for job in mine:
            await run(job)

    await asyncio.gather(*(worker(jobs[i::concurrency]) for i in range(concurrency)))


async def _open_channels(
    hub: ChannelHub, token: TokenContract, payer: PrivateKey, channels: list[OnchainChannel]
) -> None:
    await token.approve(payer, hub.address, sum(c.deposit_a for c in channels))
    for channel in channels:
        await hub.open(payer, channel)


async def measure_watcher(
    *,
    channels: int = 10_000,
    opened: int = 100,
    updates_per_channel: int = 3,
    concurrency: int = 64,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = narrator(progress)
    opened = min(opened, channels)
    deposit = 1_000
    async with set_up_rig(payer_tokens=opened * deposit, progress=say) as rig:
        payer, payee = rig.keys[PAYER], rig.keys[2]
        all_channels = [
            OnchainChannel(
                payer.address,
                payee.address,
                rig.token.address,
                3600,
                nonce,
                deposit_a=deposit if nonce < opened else 0,
            )
            for nonce in range(channels)
        ]
        process = WatcherProcess(
            hub=rig.hub.address, store=rig.root / "watcher.sqlite3", data_dir=rig.chain_dir
        )
        say("starting the watcher process")
        await process.start()
        try:
            result = await _drive(
                rig,
                process,
                all_channels[:opened],
                all_channels,
                updates_per_channel,
                concurrency,
                say,
            )
            result["rss_mb"] = round(process_rss_bytes(process.pid) / 2**20, 1)
        finally:
            exit_code = await process.stop()
    result.update(
        watcher_exit_code=exit_code,
        limits={
            "updates_per_s": ">= 2000",
            "dispute_latency_p99_ms": "<= 2000",
            "rss_mb": "<= 300",
        },
        ledger="embedded py-evm hosted by the bench process; watcher over JSON-RPC",
        store="sqlite (WAL, synchronous=FULL), group commit",
        transport=f"HTTP/1.1 keep-alive on loopback, {concurrency} connections",
        latency_measured_from="the close's receipt as the bench sees it (the bench hosts the"
        " chain, which mines each transaction as it arrives) to the challenge's receipt as the"
        " watcher sees it (its dispute record); both on this machine's wall clock",
    )
    result["meets_targets"] = (
        result["updates_per_s"] >= 2000
        and result["dispute_latency_ms"]["p99"] <= 2000
        and result["defended"] == result["closes"]
        and result["rss_mb"] <= 300
    )
    return result


async def _drive(
    rig: Rig,
    process: WatcherProcess,
    opened: list[OnchainChannel],
    channels: list[OnchainChannel],
    updates_per_channel: int,
    concurrency: int,
    say: Progress,
) -> dict[str, Any]:
    hub, payer, payee = rig.hub, rig.keys[PAYER], rig.keys[2]
    async with WatcherClient(process.url, connections=concurrency) as client:
        tokens: dict[bytes, str] = {}

        async def register(channel: OnchainChannel) -> None:
            tokens[channel.id] = await client.register(channel, payee)

        say(f"registering {len(channels):,} channels")
        started = time.perf_counter()
        await _in_parallel(channels, concurrency, register)
        register_s = time.perf_counter() - started

        say(f"opening {len(opened)} of them on chain")
        started = time.perf_counter()
        await _open_channels(hub, rig.token, payer, opened)
        open_s = time.perf_counter() - started

        say(f"signing {len(channels) * updates_per_channel:,} balance proofs")
        # Each worker owns every concurrency-th channel and sends its updates round by
        # round, so a channel's proofs always arrive in order (a newer one after an older).
        work: list[list[tuple[bytes, int, Signature]]] = [[] for _ in range(concurrency)]
        for total in range(1, updates_per_channel + 1):
            for index, channel in enumerate(channels):
                proof = hub.sign_balance_proof(payer, channel.id, total)
                work[index % concurrency].append((channel.id, total, proof))
        count = sum(len(mine) for mine in work)

        async def updates(mine: list[tuple[bytes, int, Signature]]) -> None:
            for channel_id, total, signature in mine:
                await client.update(channel_id, payee.address, tokens[channel_id], total, signature)

        say(f"submitting {count:,} updates, {concurrency} in flight")
        started = time.perf_counter()
        await asyncio.gather(*(updates(mine) for mine in work))
        update_s = time.perf_counter() - started
        info = await client.info()

        say(f"{len(opened)} stale unilateral closes at once")
        # The closer is another client of the chain's JSON-RPC endpoint, like the watcher:
        # the embedded chain mines in this event loop without yielding, so closes sent
        # in process would hold the chain until all of them are mined.
        closer_ledger = await connect_ledger(data_dir=rig.chain_dir)
        try:
            closer_hub = ChannelHub(closer_ledger, hub.address)
            latencies, defended = await _burst(
                closer_hub, client, opened, payer, updates_per_channel
            )
        finally:
            await closer_ledger.stop()
        disputes = await client.disputes()
    watcher_latency = [d["latency_ms"] for d in disputes if d["latency_ms"] is not None]
    return {
        "channels": len(channels),
        "registrations_per_s": round(len(channels) / register_s, 1),
        "updates": count,
        "updates_per_s": round(count / update_s, 1),
        "proofs_held": info.proofs,
        "closes": len(opened),
        "defended": defended,
        "dispute_latency_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p99": round(_percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
        "watcher_reported_latency_ms": {
            "p50": round(statistics.median(watcher_latency), 1) if watcher_latency else None,
            "p99": round(_percentile(watcher_latency, 0.99), 1) if watcher_latency else None,
        },
        "concurrency": concurrency,
        "open_seconds": round(open_s, 2),
    }


async def _burst(
    hub: ChannelHub,
    client: WatcherClient,
    opened: list[OnchainChannel],
    closer: PrivateKey,
    final_total: int,
) -> tuple[list[float], int]:
    """Close every opened channel at once; latency (ms) to each challenge, and how many won.

    Nothing here reads chain logs while the burst runs: the embedded chain serves every
    request in this process's event loop, and a log reader would compete with the
    watcher for it. The watcher's mined time comes from its dispute records.
    """
    closed_ms: dict[bytes, float] = {}
    deadlines: dict[bytes, int] = {}

    async def close(channel: OnchainChannel) -> None:
        receipt = await hub.close(closer, channel, 0, 0, None)
        closed_ms[channel.id] = time.time() * 1000
        for entry in receipt.logs:
            event = decode_hub_event(entry)
            if isinstance(event, ChannelClosing):
                deadlines[channel.id] = event.deadline

    await asyncio.gather(*(close(channel) for channel in opened))
    wanted = {"0x" + c.id.hex() for c in opened}
    mined: dict[str, dict[str, Any]] = {}
    give_up = time.monotonic() + 60
    while len(mined) < len(wanted) and time.monotonic() < give_up:
        await asyncio.sleep(0.05)
        for dispute in await client.disputes():
            if dispute["kind"] == "challenge" and dispute["status"] == "mined":
                mined.setdefault(dispute["channel_id"], dispute)
    latencies = [
        mined["0x" + c.id.hex()]["mined_at_ms"] - closed_ms[c.id]
        for c in opened
        if "0x" + c.id.hex() in mined
    ]
    # Defended means the chain now records the newest total, whoever reports it.
    defended = 0
    for channel in opened:
        expected = Closing(deadlines[channel.id], final_total, 0)
        if await hub.state_hash(channel.id) == await hub.expected_state_hash(channel, expected):
            defended += 1
    return latencies or [float("nan")], defended
