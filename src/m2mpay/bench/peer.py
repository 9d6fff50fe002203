"""A node in its own process, driven by JSON lines on stdin, for benchmarks and tests
that need several real processes (`python -m m2mpay.bench.peer …`).

Each command line is answered by one JSON line on stdout:
    {"cmd": "open", "peer": "0x…", "endpoint": "ws://…", "asset": "0x…", "deposit": "…",
     "peer_deposit": "0", "challenge_period": 3600}         → {"channel": "0x…"}
    {"cmd": "stream", "channel": "0x…", "count": 100000, "amount": "1", "window": 2000}
                                                            → {"payments": n, "seconds": s, …}
    {"cmd": "pay", "channel": "0x…", "amount": "5"}         → {"total": "…", "seq": n}
    {"cmd": "stream_start", "channel": "0x…", "amount": "1"} → {"streaming": true}
        (pays in the background until `stream_stop`, so other commands, and a
        SIGKILL, can come in the middle of a stream)
    {"cmd": "stream_stop", "channel": "0x…"}                → the channel's state
    {"cmd": "info", "channel": "0x…"}                       → the channel's state
    {"cmd": "close", "channel": "0x…"}                      → {"phase": "closed", …}
    {"cmd": "commit", "channel": "0x…", "amount": "5"}      → a batch-settlement payload
    {"cmd": "rss"}                                          → {"rss_bytes": n}
    {"cmd": "stop"}                                         → {"stopped": true}

With `--sessions STORE` the node also runs metered sessions; their commands
(`session_…`) are in `m2mpay.bench.session_peer`, and those of a feed's buyers
(`grant_…`) in `m2mpay.bench.feed_buyer`. With `--feeds DIR` as well, it sells a feed
on a Mosquitto of its own (`feed_…`, `m2mpay.bench.feed_seller`).

With `--device-host` the process is no node but the `DeviceHost` devices reach the
chain through (it answers only `stop`).

With `--host ENDPOINT` the node is a device: it has no ledger connection at all and
reaches the chain through a `DeviceHost` (which funds its channels). `--watcher host`
keeps the host's watcher up to date through that same host session; `--watcher URL`
feeds a watcher's HTTP API directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2mpay.bench.feed_buyer import FeedBuyer
from m2mpay.bench.feed_seller import FeedSellerPeer
from m2mpay.bench.lines import answer_lines, say
from m2mpay.bench.paywall_peer import commitment_json, start_paywall
from m2mpay.bench.peer_runs import latency, open_many, stream
from m2mpay.bench.session_peer import SessionPeer
from m2mpay.bench.stream_peer import StreamsPeer
from m2mpay.chain.devkeys import dev_keys
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.shared import connect_ledger
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import M2MPayError
from m2mpay.node import ChainAccess, ChannelInfo, LedgerAccess, Node, NodeConfig, PaymentWait
from m2mpay.node.host import DeviceHost, HostAccess
from m2mpay.store import open_store
from m2mpay.wire import WebSocketTransport

if TYPE_CHECKING:
    from m2mpay.watcher_client import WatcherClient, WatcherFeed

__all__ = ["info_json", "main", "rss_bytes"]


def rss_bytes() -> int:
    """Resident memory of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def info_json(info: ChannelInfo) -> dict[str, Any]:
    return {
        "channel": info.id_hex,
        "phase": info.phase.value,
        "balance_mine": str(info.balance_mine),
        "balance_peer": str(info.balance_peer),
        "sent_total": str(info.sent_total),
        "received_total": str(info.received_total),
        "acked_total": str(info.acked_total),
        "deposit_mine": str(info.deposit_mine),
        "deposit_peer": str(info.deposit_peer),
        "final_balance_mine": None
        if info.final_balance_mine is None
        else str(info.final_balance_mine),
    }


class _Streams:
    """Background streams of payments, one per channel, for `stream_start`."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._tasks: dict[bytes, asyncio.Task[None]] = {}

    def start(self, channel: bytes, amount: int) -> None:
        if channel in self._tasks:
            raise ValueError("already streaming on this channel")
        self._node.channel(channel)  # an unknown channel is an error now, not in the task
        self._tasks[channel] = asyncio.ensure_future(self._pay(channel, amount))

    async def _pay(self, channel: bytes, amount: int) -> None:
        # pay() waits whenever the window is full, so a dead payee pauses the stream.
        while True:
            await self._node.pay(channel, amount, wait=PaymentWait.QUEUED, timeout=600)

    async def stop(self, channel: bytes | None = None) -> None:
        for key in [channel] if channel is not None else list(self._tasks):
            task = self._tasks.pop(key, None)
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, M2MPayError):
                await task


@dataclasses.dataclass
class _Feeds:
    """A feed's seller (`--feeds`) and its buyers, made on their first command."""

    seller: FeedSellerPeer | None = None
    buyer: FeedBuyer | None = None

    async def command(self, sessions: SessionPeer, command: dict[str, Any]) -> dict[str, Any]:
        if str(command.get("cmd")).startswith("grant_"):
            if self.buyer is None:
                self.buyer = FeedBuyer(sessions.sessions)
            return await self.buyer.command(command)
        if self.seller is None:
            raise ValueError("this node sells no feed (start it with --feeds)")
        return await self.seller.command(command)

    async def stop(self) -> None:
        if self.buyer is not None:
            await self.buyer.stop()
        if self.seller is not None:
            await self.seller.stop()


async def _command(
    node: Node,
    command: dict[str, Any],
    sessions: SessionPeer | None = None,
    streams: _Streams | None = None,
    feeds: _Feeds | None = None,
    provenance: StreamsPeer | None = None,
) -> dict[str, Any]:
    name = command.get("cmd")
    if isinstance(name, str) and name.startswith("streams_"):
        if provenance is None:
            raise ValueError("this node writes no streams (start it with --streams)")
        return await provenance.command(command)
    if isinstance(name, str) and name.startswith(("feed_", "grant_")):
        if sessions is None or feeds is None:
            raise ValueError("this node runs no sessions (start it with --sessions)")
        return await feeds.command(sessions, command)
    if name in ("stream_start", "stream_stop") and streams is not None:
        channel = bytes.fromhex(command["channel"][2:])
        if name == "stream_start":
            streams.start(channel, int(command.get("amount", 1)))
            return {"streaming": True}
        await streams.stop(channel)
        await node.flushed()
        return info_json(node.channel(channel))
    if isinstance(name, str) and name.startswith("session_"):
        if sessions is None:
            raise ValueError("this node runs no sessions (start it with --sessions)")
        return await sessions.command(command)
    if name == "open":
        info = await node.open_channel(
            Address(command["peer"]),
            Address(command["asset"]),
            int(command["deposit"]),
            peer_deposit=int(command.get("peer_deposit", 0)),
            challenge_period=command.get("challenge_period"),
            endpoint=command.get("endpoint"),
        )
        return info_json(info)
    if name == "stream":
        return await stream(node, command)
    if name == "latency":
        return await latency(node, command)
    if name == "open_many":
        return await open_many(node, command)
    if name == "pay":
        handle = await node.pay(bytes.fromhex(command["channel"][2:]), int(command["amount"]))
        return {"total": str(handle.total), "seq": handle.seq}
    if name == "commit":
        return await commitment_json(node, command)
    if name == "info":
        return info_json(node.channel(bytes.fromhex(command["channel"][2:])))
    if name == "channels":
        return {"count": len(node.channels())}
    if name == "close":
        return info_json(await node.close(bytes.fromhex(command["channel"][2:])))
    if name == "rss":
        gc.collect()
        return {"rss_bytes": rss_bytes()}
    raise ValueError(f"unknown command {name!r}")


def _watcher_feed(
    node: Node, chain: ChainAccess, target: str
) -> tuple[WatcherFeed, WatcherClient | None]:
    """The feed for `--watcher`, and the HTTP client it uses, if any (to close)."""
    # Imported here: a plain node process has no use for the watcher package.
    from m2mpay.watcher_client import WatcherClient, WatcherFeed

    if target == "host":
        if not isinstance(chain, HostAccess):
            raise SystemExit("--watcher host needs --host")
        return WatcherFeed(node, chain.watchtower), None
    client = WatcherClient(target)
    return WatcherFeed(node, client), client


async def _chain_access(
    args: argparse.Namespace, key: PrivateKey
) -> tuple[ChainAccess, Ledger | None]:
    """The node's way to the chain, and the ledger it opened for it (to stop), if any."""
    if args.host:
        host = Address(args.host_address) if args.host_address else None
        if args.reconnect_max_delay is None:
            link = HostAccess(key, WebSocketTransport(), args.host, host=host, codec=args.codec)
        else:
            link = HostAccess(
                key,
                WebSocketTransport(),
                args.host,
                host=host,
                codec=args.codec,
                reconnect_backoff=(0.1, args.reconnect_max_delay),
            )
        return link, None
    if not args.hub:
        raise SystemExit("--hub is needed unless the node is a device (--host)")
    ledger = await connect_ledger(
        data_dir=Path(args.chain_dir) if args.chain_dir else None, rpc_url=args.rpc_url
    )
    return LedgerAccess(ledger, Address(args.hub), key), ledger


def _node_config(args: argparse.Namespace) -> NodeConfig:
    config = NodeConfig(codec=args.codec, max_in_flight=args.window)
    if args.reconnect_max_delay is not None:
        config = dataclasses.replace(config, reconnect_max_delay_s=args.reconnect_max_delay)
    return config


async def _serve_host(args: argparse.Namespace) -> None:
    """`--device-host`: a `DeviceHost` for devices (`--host`) instead of a node; it
    answers only `stop`, so that it can be killed and started like a node."""
    key = dev_keys(args.key + 1)[args.key]
    ledger = await connect_ledger(
        data_dir=Path(args.chain_dir) if args.chain_dir else None, rpc_url=args.rpc_url
    )
    host = DeviceHost(
        key, ledger, Address(args.hub), WebSocketTransport(port=args.port), codec=args.codec
    )
    await host.start()

    async def refuse(_: dict[str, Any]) -> dict[str, Any]:
        return {"error": "a device host answers only stop"}

    try:
        await answer_lines({"ready": host.endpoint, "address": str(key.address)}, refuse)
    finally:
        await host.stop()
        await ledger.stop()
    say({"stopped": True})


async def _provenance(
    args: argparse.Namespace, sessions: SessionPeer | None, ledger: Ledger | None
) -> StreamsPeer | None:
    """With `--streams`: the sessions' provenance streams, started."""
    if not args.streams:
        return None
    if sessions is None:
        raise SystemExit("--streams needs --sessions")
    anchor = Address(args.anchor) if args.anchor else None
    provenance = StreamsPeer(
        sessions.sessions, sessions.resales, Path(args.streams), ledger, anchor
    )
    await provenance.start()
    return provenance


async def _serve(args: argparse.Namespace) -> None:
    if args.device_host:
        await _serve_host(args)
        return
    key = dev_keys(args.key + 1)[args.key]
    chain, ledger = await _chain_access(args, key)
    node = Node(
        key,
        chain,
        open_store(args.store),
        transport=WebSocketTransport(port=args.port),
        config=_node_config(args),
    )
    await node.start()
    feed, client = _watcher_feed(node, chain, args.watcher) if args.watcher else (None, None)
    if feed is not None:
        await feed.start()
    streams = _Streams(node)
    sessions = SessionPeer(node, Path(args.sessions)) if args.sessions else None
    provenance = await _provenance(args, sessions, ledger)
    feeds = _Feeds()
    if args.feeds:
        if sessions is None:
            raise SystemExit("--feeds needs --sessions")
        # Before the sessions start: those resumed after a restart find their grants.
        feeds.seller = FeedSellerPeer(node, sessions.sessions, Path(args.feeds))
        await feeds.seller.start()
    if sessions is not None:
        await sessions.start()
    if provenance is not None:
        provenance.hook()
    if feeds.seller is not None:
        await feeds.seller.start_publishing()
    ready = {"ready": node.endpoint, "address": str(node.address)}
    paywall = await start_paywall(node, Address(args.paywall)) if args.paywall else None
    if paywall is not None:
        ready["paywall"] = paywall.url
    try:
        await answer_lines(
            ready, lambda command: _command(node, command, sessions, streams, feeds, provenance)
        )
    finally:
        if paywall is not None:
            await paywall.stop()
        await streams.stop()
        if provenance is not None:
            await provenance.stop()
        await feeds.stop()
        if sessions is not None:
            await sessions.stop()
        if feed is not None:
            await feed.stop()
        if client is not None:
            await client.close()
        await node.stop()
        if ledger is not None:
            await ledger.stop()
    say({"stopped": True})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m m2mpay.bench.peer")
    parser.add_argument("--key", type=int, required=True, help="dev account index")
    parser.add_argument("--hub", help="ChannelHub address (not for a device: its host knows)")
    parser.add_argument("--store", required=True)
    parser.add_argument("--chain-dir", help="data dir of a shared embedded chain")
    parser.add_argument("--rpc-url", help="JSON-RPC node instead")
    parser.add_argument("--host", help="a device: reach the chain through this DeviceHost")
    parser.add_argument("--host-address", help="the host's address, checked in the handshake")
    parser.add_argument("--watcher", help="feed a watcher: 'host' (through --host) or its URL")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--codec", default="cbor")
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument(
        "--reconnect-max-delay",
        type=float,
        help="longest back-off to a peer, or to the host (--host) (s)",
    )
    parser.add_argument("--sessions", help="store of metered sessions (runs a session manager)")
    parser.add_argument("--streams", help="provenance streams of the sessions sold (a store)")
    parser.add_argument("--anchor", help="anchor the streams' heads on this contract")
    parser.add_argument("--feeds", help="sell the feed of DIR/feed.json on a broker of its own")
    parser.add_argument("--paywall", help="serve an HTTP 402 paywall paid in this asset")
    parser.add_argument(
        "--device-host", action="store_true", help="run a DeviceHost (on --hub) instead of a node"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    profile_to = os.environ.get("M2MPAY_PROFILE")
    if profile_to:
        # Profiling a node where it really runs: in its own process, under load.
        import cProfile

        cProfile.runctx(
            "asyncio.run(_serve(args))", globals(), locals(), f"{profile_to}.{args.key}"
        )
    else:
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
