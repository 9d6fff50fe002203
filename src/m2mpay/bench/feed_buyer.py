"""Buyers of a feed in a `m2mpay.bench.peer` process (`--sessions STORE`): each pays
for seconds of the live topic with credentials sealed to the seller and reads it with
an MQTT client of its own, noting what arrives.

Commands (see `m2mpay.bench.peer` for the protocol; `offer` and `feed` as the seller's
`feed_offer` gives them):
    {"cmd": "grant_buy", "offer": {…}, "feed": {…}, "seconds": [s, …], "concurrency": 1,
     "retry_ms": 2}
        → {"grants": [{session, username, grant_ms, suback_ms}, …], "seconds": elapsed}
          once each reader holds an accepted subscription to the live topic
    {"cmd": "grant_extend", "session": "0x…", "seconds": total}  → the session
    {"cmd": "grant_readers", "close": false}
        → {"readers": [{session, username, suback_ms, received: [[n, at_ms], …]}, …]}
          (n is -1 for a message that has no number: the real plug's)

`grant_ms` runs from just before the buyer asks for the session (the request, the
seller's acceptance, the prepayment and its durable acknowledgement included) to the
reader's SUBACK granting a QoS; the reader logs in and subscribes every `retry_ms`
until it may (many readers at once retry less often, not to flood the broker that the
seller administers through). A reader keeps its persistent session and connects
again whenever the connection drops (the seller's broker restarted), until its login is
refused: the grant ended and the seller removed its client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from m2mpay.access.feeds import Feed
from m2mpay.access.mosquitto import raise_descriptor_limit
from m2mpay.access.sealed import Credentials, seal, sealed_context
from m2mpay.access.topics import suback_refused
from m2mpay.lifecycle import raise_if_cancelling
from m2mpay.plain import from_plain
from m2mpay.stream import Offer, SessionInfo, SessionManager
from m2mpay.stream.outputs import SessionEvent, SessionStarted

__all__ = ["FeedBuyer", "Reader"]

_RECONNECT_S: Final = 0.2  # after a drop
# A CONNACK or SUBACK that has not come by then never will: a broker dying as the reader
# connected or subscribed (its node SIGKILLed) answers nothing, and aiomqtt's default of
# 10 s would make the reader miss a grant of a few seconds on the restarted one.
_ANSWER_S: Final = 2.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Reader:
    """A buyer's MQTT client on the live topic."""

    session: bytes
    credentials: Credentials
    host: str
    port: int
    topic: str
    retry_s: float  # between logins and subscriptions refused while the grant is on its way
    granted: asyncio.Event = field(default_factory=asyncio.Event)
    suback_ms: int = 0
    suback_at: float = 0.0  # perf_counter
    received: list[tuple[int, int]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        credentials = self.credentials
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username=credentials.username,
                    password=credentials.password,
                    identifier=credentials.username,
                    clean_session=False,
                    timeout=_ANSWER_S,
                ) as client:
                    await self._subscribe(client)
                    async for message in client.messages:
                        if isinstance(message.payload, bytes):
                            body = json.loads(message.payload)
                            # The real plug numbers nothing: -1 then.
                            number = int(body.get("n", -1))
                            self.received.append((number, int(body["at_ms"])))
            except MqttConnectError:
                raise_if_cancelling()
                if self.granted.is_set():
                    return  # the client is gone: its grant ended
                # Not a client yet: the seller makes it with the grant, once paid.
                await asyncio.sleep(self.retry_s)
            except aiomqtt.MqttError:
                raise_if_cancelling()
                # Dropped: the broker went (a seller restarting), or the grant ended.
                await asyncio.sleep(_RECONNECT_S)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        if self.granted.is_set():
            # Back after a drop: the persistent session kept the subscription; asking
            # again is harmless, and a refusal now (the grant ended) changes nothing.
            await client.subscribe(self.topic, qos=1)
            return
        while True:
            result = await client.subscribe(self.topic, qos=1)
            if not any(suback_refused(code) for code in result or ()):
                self.suback_ms, self.suback_at = now_ms(), time.perf_counter()
                self.granted.set()
                return
            await asyncio.sleep(self.retry_s)

    def as_json(self) -> dict[str, Any]:
        return {
            "session": "0x" + self.session.hex(),
            "username": self.credentials.username,
            "suback_ms": self.suback_ms,
            "received": self.received,
        }


class FeedBuyer:
    """The buyer's side; see the module docstring."""

    def __init__(self, sessions: SessionManager) -> None:
        self._sessions = sessions
        self._readers: dict[bytes, Reader] = {}
        self._used: set[bytes] = set()  # channels a purchase of ours ran on
        # When each purchase's prepayment left: the buyer's session announces its start
        # (durable) just before its dispatcher pays ahead, in the same batch of outputs.
        self._paying: dict[bytes, float] = {}
        sessions.add_listener(self._on_session)
        raise_descriptor_limit()  # a socket per reader
        # paho logs every login refused while a grant is on its way; the reader retries.
        logging.getLogger("mqtt").setLevel(logging.CRITICAL)

    def _on_session(self, event: SessionEvent, _info: SessionInfo | None) -> None:
        if isinstance(event, SessionStarted) and event.session_id in self._readers:
            self._paying.setdefault(event.session_id, time.perf_counter())

    async def stop(self) -> None:
        tasks = [reader.task for reader in self._readers.values() if reader.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            # A client saying goodbye on a connection the broker dropped can wait forever.
            await asyncio.wait(tasks, timeout=10)

    async def command(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.get("cmd")
        if name == "grant_buy":
            return await self._buy(command)
        if name == "grant_extend":
            session = bytes.fromhex(str(command["session"]).removeprefix("0x"))
            info = self._sessions.extend_session(
                session, target_units=int(command["seconds"]), budget=0
            )
            return {"session": info.id_hex, "phase": info.phase.value}
        if name == "grant_readers":
            readers = [reader.as_json() for reader in self._readers.values()]
            if command.get("close"):
                await self.stop()
                self._readers.clear()
            return {"readers": readers}
        raise ValueError(f"unknown command {name!r}")

    async def _buy(self, command: dict[str, Any]) -> dict[str, Any]:
        offer, feed = from_plain(command["offer"]), from_plain(command["feed"])
        if not isinstance(offer, Offer) or not isinstance(feed, Feed):
            raise ValueError("not an offer and its feed")
        # Each purchase on a channel of its own, never used before: a channel holds the
        # deposit for one purchase, and the session manager would pick one whose first
        # purchase had ended (buying a thousand takes longer than the shortest grant).
        free = [
            channel.channel_id
            for channel in self._sessions.node.channels()
            if channel.peer == offer.seller
            and channel.asset == offer.asset
            and channel.phase.value == "open"
            and channel.channel_id not in self._used
        ]
        if len(free) < len(command["seconds"]):
            raise ValueError(
                f"{len(free)} free channels to the seller for {len(command['seconds'])}"
            )
        self._used.update(free[: len(command["seconds"])])
        gate = asyncio.Semaphore(int(command.get("concurrency", 1)))
        timeout = float(command.get("timeout", 60))
        retry_s = float(command.get("retry_ms", 2)) / 1000

        async def buy(seconds: int, channel: bytes) -> dict[str, Any]:
            async with gate:
                return await self._buy_one(offer, feed, seconds, channel, timeout, retry_s)

        began = time.perf_counter()
        grants = await asyncio.gather(
            *(buy(int(s), c) for s, c in zip(command["seconds"], free, strict=False))
        )
        return {"grants": grants, "seconds": time.perf_counter() - began}

    async def _buy_one(
        self,
        offer: Offer,
        feed: Feed,
        seconds: int,
        channel: bytes,
        timeout: float,
        retry_s: float,
    ) -> dict[str, Any]:
        credentials = Credentials.generate("bench")
        session = secrets.token_bytes(32)
        context = sealed_context(self._sessions.node.address, feed.device_id, session)
        terms = seal(feed.access_key, credentials, context)
        host, _, port = feed.broker.rpartition(":")
        reader = Reader(session, credentials, host, int(port), feed.live_topic, retry_s)
        self._readers[session] = reader
        asked = time.perf_counter()
        # The reader tries from the start: its client exists once the seller accepts.
        reader.task = asyncio.ensure_future(reader.run())
        await self._sessions.start_session(
            offer,
            channel_id=channel,
            target_units=seconds,
            supply_terms=terms,
            session_id=session,
            timeout=timeout,
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await reader.granted.wait()
        if not reader.granted.is_set():
            raise TimeoutError(f"no subscription granted {timeout:g} s after paying")
        return {
            "session": "0x" + session.hex(),
            "username": credentials.username,
            "grant_ms": (reader.suback_at - asked) * 1000,
            "grant_from_payment_ms": (reader.suback_at - self._paying.get(session, asked)) * 1000,
            "suback_ms": reader.suback_ms,
        }
