"""`data-feed`: a smart plug publishes its power twice a second on its owner's broker;
anyone reads the 1-minute average for free; a reader pays for seconds of the live
feed through its own node, reads it exactly while paid, is cut off at the end, and
renews. Every reader is a real MQTT client on the owner's real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final

import aiomqtt

from m2mpay.access.sealed import Credentials
from m2mpay.client import GrantBought, GrantView
from m2mpay.devices.plug import SmartPlug
from m2mpay.devices.simulated import wind_power
from m2mpay.lifecycle import raise_if_cancelling
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.stage import Actor, until

__all__ = ["PaidData"]

PRICE_PER_HOUR: Final = 3600 * 10**14  # 10**14 token units a second
SECONDS: Final = 6  # bought each time
RENEWED: Final = 4
# A message published this long after the paid end may still be on its way; nothing
# published later may reach the reader.
TOLERANCE_MS: Final = 500
DEPOSIT: Final = 10**18


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Listener:
    """An MQTT client reading one topic (anonymous without credentials), reconnecting
    when the broker drops it, noting each live message's publication time."""

    host: str
    port: int
    topic: str
    credentials: Credentials | None = None
    received: list[int] = field(default_factory=list)  # the messages' at_ms
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        username = self.credentials.username if self.credentials else None
        password = self.credentials.password if self.credentials else None
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username=username,
                    password=password,
                    identifier=f"reader-{username or 'anonymous'}-{id(self)}",
                    clean_session=False,
                ) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        body = message.payload
                        if isinstance(body, bytes | bytearray):
                            self.received.append(int(json.loads(body)["at_ms"]))
            except aiomqtt.MqttError:
                raise_if_cancelling()
                await asyncio.sleep(0.2)  # refused or dropped: try again, as a client would


class PaidData(Scenario):
    name = "data-feed"
    title = "Live data readable exactly while paid; its average free to all"
    unit = "s"

    async def play(self, play: Play) -> None:
        reader, owner = await play.cast("reader", "plug-owner")
        published = await owner.api.publish_feed(
            "plug-1", price_per_hour=PRICE_PER_HOUR, min_seconds=1, max_seconds=3600
        )
        feed, device = published.feed, published.device
        play.say(f"feed {feed.live_topic} at {feed.broker}, average free on {feed.free_topic}")
        plug = SmartPlug(
            feed.device_id,
            device.host,
            device.port,
            power=wind_power(2_000.0),
            credentials=Credentials(device.username, device.password),
            average_every_s=1.0,
        )
        async with plug:
            await asyncio.wait_for(plug.online.wait(), 30)
            free = Listener(device.host, device.port, feed.free_topic)
            snooper = Listener(device.host, device.port, feed.live_topic)
            async with _running(free, snooper):
                first, second = await self._buy_twice(play, reader, owner, feed.feed_id)
        sold = {g.session_id: g for g in await owner.api.grants() if g.role == "seller"}
        ends = [sold[b.grant.session_id].paid_until_ms for b in (first[0], second[0])]
        phase = await play.close_channel(reader, await _channel_of(reader, first[0].grant))

        play.report.units = SECONDS + RENEWED
        play.report.paid = sum(int(b.grant.paid) for b, _ in (first, second))
        play.check("the average is free to all", len(free.received) > 0, f"{len(free.received)}")
        play.equal("live messages an unpaid client read", len(snooper.received), 0)
        for (bought, listener), end in zip((first, second), ends, strict=True):
            late = [at for at in listener.received if end is None or at > end + TOLERANCE_MS]
            play.check(
                f"read live while paid ({bought.grant.seconds} s)",
                len(listener.received) >= bought.grant.seconds,  # two a second are published
                f"{len(listener.received)} messages",
            )
            play.equal("messages published after the paid end that reached the reader", late, [])
        play.equal("the reader's channel", phase, "closed")

    async def _buy_twice(
        self, play: Play, reader: Actor, owner: Actor, feed_id: str
    ) -> tuple[tuple[GrantBought, Listener], tuple[GrantBought, Listener]]:
        play.say(f"reader pays for {SECONDS} s of the live feed")
        first = await reader.api.buy_grant(
            owner.process.url, feed_id, seconds=SECONDS, deposit=DEPOSIT
        )
        credentials = Credentials(first.username, first.password)
        paid = Listener(first.host, first.port, first.grant.live_topic, credentials)
        async with _running(paid):
            await _ended(reader, first.grant)
            play.show_session(await reader.api.session(first.grant.session_id), SECONDS + RENEWED)
            play.say("paid time over: the reader is cut off while the plug goes on publishing")
            await asyncio.sleep(2.0)
        play.say(f"reader renews for {RENEWED} s, with the same client")
        second = await reader.api.buy_grant(
            owner.process.url,
            feed_id,
            seconds=RENEWED,
            username=first.username,
            password=first.password,
        )
        renewed = Listener(second.host, second.port, second.grant.live_topic, credentials)
        async with _running(renewed):
            await _ended(reader, second.grant)
            await asyncio.sleep(1.0)
        return (first, paid), (second, renewed)


async def _ended(reader: Actor, grant: GrantView) -> None:
    async def over() -> bool:
        return (await reader.api.grant(grant.session_id)).phase == "stopped"

    await until(over, f"the {grant.seconds} s bought to run out")


async def _channel_of(reader: Actor, grant: GrantView) -> str:
    session = await reader.api.session(grant.session_id)
    return session.channel_id


@contextlib.asynccontextmanager
async def _running(*listeners: Listener) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(listener.run()) for listener in listeners]
    try:
        for listener in listeners:
            await asyncio.wait_for(listener.subscribed.wait(), 30)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
