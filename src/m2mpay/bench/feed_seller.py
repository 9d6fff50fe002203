"""A feed's seller in a `m2mpay.bench.peer` process (`--feeds DIR`).

The node's own Mosquitto in `DIR/mqtt/`, its administrator, the `GrantKeeper` (its
store in `DIR`), the `FeedSeller` with one feed, and a publisher standing in for the
plug: a numbered, timestamped QoS 1 message on the live topic `publish_hz` times a
second, each noted once the broker acknowledged it. With `publish_hz` 0 the plug is
outside the node (`m2mpay device run plug`, with the credentials `feed_plug` made).
The feed is described by `DIR/feed.json` (`write_feed_config`); the offer it is
sold under is kept in `DIR/offer.json`, so that a seller killed and started again
sells it under the same offer and its running sessions find their grants.

Commands (see `m2mpay.bench.peer` for the protocol):
    {"cmd": "feed_offer"}      → {"offer": {…}, "feed": {…}} (plain, for the buyers)
    {"cmd": "feed_published"}  → {"published": [[n, at_ms], …]} (since this start)
    {"cmd": "feed_grants"}     → {"grants": [{session, username, phase, permitted_s,
                                   paid_until_ms}, …]}
    {"cmd": "feed_audit", "tolerance_ms": 250}
                               → {"readable_without_grant": [username, …], "clients": n}
    {"cmd": "feed_broker_rss"} → {"rss_bytes": n} (the Mosquitto process)
    {"cmd": "feed_broker_pid"} → {"pid": n}
    {"cmd": "feed_plug"}       → {"broker": "host:port", "username": …, "password": …}
                                  (a plug's client, with a new password, made once:
                                  the broker keeps it across restarts)

`feed_audit` also names the clients of live grants (ending later than the tolerance)
that may not read the live topic: `unreadable_with_grant`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any, Final

import aiomqtt

from m2mpay.access.broker import TopicAccess
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.dynsec_file import withdraw_reads
from m2mpay.access.feeds import feed_topics, new_feed
from m2mpay.access.grant import Grant, GrantPhase
from m2mpay.access.keeper import GrantKeeper, KeeperConfig
from m2mpay.access.mosquitto import ManagedMosquitto
from m2mpay.access.sealed import access_public_key
from m2mpay.access.selling import RESERVED_PREFIX, FeedSeller, SoldFeed
from m2mpay.crypto import Address
from m2mpay.errors import AccessError
from m2mpay.lifecycle import cancel_and_wait
from m2mpay.node import Node
from m2mpay.plain import from_plain, to_plain
from m2mpay.store import open_store
from m2mpay.stream import Offer, SessionManager

__all__ = ["FeedSellerPeer", "grant_json", "write_feed_config"]

log = logging.getLogger("m2mpay.bench")

PUBLIC_TOPICS: Final = ("m2m/+/1m",)


def write_feed_config(
    directory: Path,
    *,
    device: str,
    asset: Address,
    price_per_hour: int,
    max_seconds: int,
    publish_hz: float,
) -> None:
    """What the seller process of `directory` sells, and how fast its plug publishes."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "device": device,
        "asset": str(asset),
        "price_per_hour": str(price_per_hour),
        "max_seconds": max_seconds,
        "publish_hz": publish_hz,
    }
    (directory / "feed.json").write_text(json.dumps(config))


def grant_json(grant: Grant) -> dict[str, Any]:
    return {
        "session": "0x" + grant.session_id.hex(),
        "username": grant.username,
        "phase": grant.phase.value,
        "permitted_s": grant.permitted_s,
        "paid_until_ms": grant.paid_until_ms,
    }


def _rss_of(pid: int | None) -> int:
    if pid is None:
        return 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class FeedSellerPeer:
    """See the module docstring. `start` before the session manager starts (sessions
    resumed after a restart need their feed's devices); `start_publishing` after."""

    def __init__(self, node: Node, sessions: SessionManager, directory: Path) -> None:
        self._node = node
        self._sessions = sessions
        self._directory = directory
        self._config: dict[str, Any] = json.loads((directory / "feed.json").read_text())
        # As the node's: no client reads until the keeper gives back what is paid.
        self.mosquitto = ManagedMosquitto(directory, before_start=withdraw_reads)
        self._broker: DynsecBroker | None = None
        self._keeper: GrantKeeper | None = None
        self._sold: SoldFeed | None = None
        self._publisher: asyncio.Task[None] | None = None
        self.published: list[tuple[int, int]] = []

    @property
    def keeper(self) -> GrantKeeper:
        assert self._keeper is not None, "the seller is not started"
        return self._keeper

    @property
    def broker(self) -> DynsecBroker:
        assert self._broker is not None, "the seller is not started"
        return self._broker

    @property
    def sold(self) -> SoldFeed:
        assert self._sold is not None, "the seller is not started"
        return self._sold

    async def start(self) -> None:
        # Blocking, and it stops the broker a killed seller left running first.
        await asyncio.to_thread(self.mosquitto.start)
        self._broker = DynsecBroker(self.mosquitto.address)
        await self._broker.start()
        await self._broker.prepare()
        await self._broker.set_public(list(PUBLIC_TOPICS))
        self._keeper = GrantKeeper(
            self._broker,
            open_store(self._directory / "grants.sqlite3"),
            KeeperConfig(),
        )
        await self._keeper.start()
        config, address = self._config, self.mosquitto.address
        feed = new_feed(
            config["device"],
            price_per_hour=int(config["price_per_hour"]),
            asset=Address(config["asset"]),
            access_key=access_public_key(self._node.key),
            broker=f"{address.host}:{address.port}",
            min_seconds=1,
            max_seconds=int(config["max_seconds"]),
        )
        kept = self._directory / "offer.json"
        offer = from_plain(json.loads(kept.read_text())) if kept.exists() else None
        if offer is not None and not isinstance(offer, Offer):
            raise ValueError(f"{kept} holds no offer")
        self._sold = FeedSeller(self._sessions, self._keeper, self._node.key).publish(feed, offer)
        kept.write_text(json.dumps(to_plain(self._sold.offer, binary=False)))

    async def start_publishing(self) -> None:
        if not float(self._config["publish_hz"]):
            return  # the plug publishes from outside (`feed_plug`)
        name, password = await self._plug_client()
        self._publisher = asyncio.ensure_future(self._publish(name, password))

    async def _plug_client(self) -> tuple[str, str]:
        """The plug's client, made again with a new password, writing its topics only."""
        topics = feed_topics(self.sold.feed.device_id)
        name, password = f"{RESERVED_PREFIX}{self.sold.feed.device_id}", secrets.token_urlsafe(24)
        if name in await self.broker.clients():
            await self.broker.remove_client(name)  # its password went with the last run
        await self.broker.add_client(name, password)
        for topic in (topics.live, topics.free):
            await self.broker.allow(name, TopicAccess(topic, read=False, write=True))
        return name, password

    async def stop(self) -> None:
        await cancel_and_wait(self._publisher)
        if self._keeper is not None:
            await self._keeper.stop()
        if self._broker is not None:
            await self._broker.stop()
        await asyncio.to_thread(self.mosquitto.stop)

    async def _publish(self, name: str, password: str) -> None:
        topic = self.sold.feed.live_topic
        period = 1.0 / float(self._config["publish_hz"])
        address = self.mosquitto.address
        client = aiomqtt.Client(address.host, address.port, username=name, password=password)
        async with client:
            began, n = time.monotonic(), 0
            while True:
                at_ms = time.time_ns() // 1_000_000
                await client.publish(topic, json.dumps({"n": n, "at_ms": at_ms}), qos=1)
                self.published.append((n, at_ms))
                n += 1
                # On a schedule, not a fixed pause: a slow acknowledgement does not slow it.
                await asyncio.sleep(max(0.0, began + n * period - time.monotonic()))

    async def command(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.get("cmd")
        if name == "feed_offer":
            sold = self.sold
            return {
                "offer": to_plain(sold.offer, binary=False),
                "feed": to_plain(sold.feed, binary=False),
            }
        if name == "feed_published":
            return {"published": self.published}
        if name == "feed_grants":
            return {"grants": [grant_json(grant) for grant in self.keeper.grants()]}
        if name == "feed_audit":
            return await self._audit(int(command.get("tolerance_ms", 250)))
        if name == "feed_broker_rss":
            return {"rss_bytes": _rss_of(self.mosquitto.pid)}
        if name == "feed_broker_pid":
            return {"pid": self.mosquitto.pid}
        if name == "feed_plug":
            username, password = await self._plug_client()
            address = self.mosquitto.address
            return {
                "broker": f"{address.host}:{address.port}",
                "username": username,
                "password": password,
            }
        raise ValueError(f"unknown command {name!r}")

    async def _audit(self, tolerance_ms: int) -> dict[str, Any]:
        """The broker's clients that may read the live topic without a live grant (a
        grant whose end passed less than `tolerance_ms` ago still counts as live), and
        the live grants (ending later than `tolerance_ms` from now) whose clients may not."""
        topic = self.sold.feed.live_topic
        now = time.time_ns() // 1_000_000
        grants = self.keeper.grants()
        live = {grant.username for grant in grants if grant.paid_until_ms + tolerance_ms > now}
        paid = {
            grant.username
            for grant in grants
            if grant.phase is GrantPhase.LIVE and grant.paid_until_ms > now + tolerance_ms
        }
        clients = await self.broker.clients()
        readers = set()
        for username in sorted(clients):
            if username.startswith(RESERVED_PREFIX):
                continue
            try:
                accesses = await self.broker.access_of(username)
            except AccessError as exc:
                if exc.code != "unknown_client":
                    raise
                continue  # removed since it was listed: its grant ended
            if any(a.read and a.topic == topic for a in accesses):
                readers.add(username)
        return {
            "readable_without_grant": sorted(readers - live),
            "unreadable_with_grant": sorted(paid - readers),
            "clients": len(clients),
        }
