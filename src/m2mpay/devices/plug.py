"""A simulated smart plug that joins a broker as a real one would: over MQTT, with its
own username and password (which a broker the node administers lets publish only the
plug's own topics), publishing what it draws.

What it publishes (JSON objects, UTF-8, compact):

- ``m2m/<device>/live``, the paid live topic, `rate_hz` times a second (2 by default),
  QoS 1, not retained: ``{"watts": 1234.5, "at_ms": 1765000000000}``, the instant
  power to 0.1 W and when it was read, in epoch milliseconds.
- ``m2m/<device>/1m``, the free topic, every `average_every_s` seconds (5 by
  default), QoS 1, retained so that a reader who subscribes gets the latest at once:
  ``{"watts": 1201.3, "at_ms": 1765000000000, "window_s": 60, "samples": 120}``, the
  mean to 0.1 W of the `samples` live values published within the last `window_s`
  seconds (60 by default) up to `at_ms`, the time of the newest of them.

The power follows one of the curves of `m2mpay.devices.simulated`. While the broker is
away nothing is read or published (live data that arrives late is not live); the
plug reconnects by itself, waiting a little longer after each failure, up to
`MAX_RETRY_S`. What happens is told to `say` as events (``connected``,
``disconnected``, ``stopped``); the password never is.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiomqtt
import orjson

from m2mpay.access.feeds import feed_topics
from m2mpay.access.sealed import Credentials
from m2mpay.devices.catalog import Curve
from m2mpay.devices.simulated import PowerCurve, power_curve
from m2mpay.lifecycle import Startable, cancel_and_wait, raise_if_cancelling

__all__ = [
    "MAX_RETRY_S",
    "MovingAverage",
    "PlugSettings",
    "SmartPlug",
    "run_plug",
]

MIN_RETRY_S: Final = 0.2
MAX_RETRY_S: Final = 5.0
# A PUBACK slower than this means the broker is gone even if the socket has not said so.
PUBLISH_TIMEOUT_S: Final = 10.0

Say = Callable[[dict[str, Any]], None]


class MovingAverage:
    """The mean of the values added within the last `window_ms` (a sample at exactly
    `now - window_ms` has left it). Times must not go back."""

    def __init__(self, window_ms: int) -> None:
        if window_ms <= 0:
            raise ValueError("the window must be positive")
        self.window_ms = window_ms
        self._samples: deque[tuple[int, float]] = deque()

    def add(self, at_ms: int, value: float) -> None:
        if self._samples and at_ms < self._samples[-1][0]:
            raise ValueError("a sample older than the newest one")
        self._samples.append((at_ms, value))
        self._drop_before(at_ms)

    def _drop_before(self, now_ms: int) -> None:
        while self._samples and self._samples[0][0] <= now_ms - self.window_ms:
            self._samples.popleft()

    def samples(self, now_ms: int) -> int:
        """How many values are within the window at `now_ms`."""
        self._drop_before(now_ms)
        return len(self._samples)

    def mean(self, now_ms: int) -> float | None:
        """The mean at `now_ms`, or None when the window holds nothing."""
        self._drop_before(now_ms)
        if not self._samples:
            return None
        return math.fsum(value for _, value in self._samples) / len(self._samples)


def _body(**fields: object) -> bytes:
    return orjson.dumps(fields)


class SmartPlug(Startable):
    """The plug `device_id` on the broker at `host`:`port`; see the module docstring.

    `start` returns at once and the plug connects (and reconnects) in the background;
    `online` is set while it is connected. `clock_ms` is the wall clock its messages
    are stamped with.
    """

    def __init__(
        self,
        device_id: str,
        host: str,
        port: int,
        *,
        power: PowerCurve,
        credentials: Credentials | None = None,
        rate_hz: float = 2.0,
        window_s: int = 60,
        average_every_s: float = 5.0,
        say: Say | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        if rate_hz <= 0 or window_s <= 0 or average_every_s <= 0:
            raise ValueError("the rate, the window and the average's period must be positive")
        self.device_id = device_id
        self.topics = feed_topics(device_id)
        self._host = host
        self._port = port
        self._power = power
        self._credentials = credentials
        self._period_s = 1.0 / rate_hz
        self._window_s = window_s
        self._average_every_ms = round(average_every_s * 1000)
        self._average = MovingAverage(window_s * 1000)
        self._say = say or (lambda _event: None)
        self._clock_ms = clock_ms
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self._energy_wh = 0.0
        self._last_at_ms = 0
        self._last_average_ms: int | None = None
        self.online = asyncio.Event()
        self.connections = 0  # times it has connected
        self.published = 0  # live messages the broker acknowledged

    @property
    def broker(self) -> str:
        return f"{self._host}:{self._port}"

    async def start(self) -> None:
        if self._task is None:
            self._started = time.monotonic()
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # Cancelled inside `async with client`, which sends DISCONNECT on its way out.
            await cancel_and_wait(task)
            self._say({"event": "stopped", "device": self.device_id})

    def _client(self) -> aiomqtt.Client:
        credentials = self._credentials
        return aiomqtt.Client(
            self._host,
            self._port,
            # One session a plug: a second process of the same plug takes the first's over.
            identifier=f"m2m-plug-{self.device_id}",
            username=credentials.username if credentials else None,
            password=credentials.password if credentials else None,
            clean_session=True,
            keepalive=10,
            timeout=PUBLISH_TIMEOUT_S,
            # Live data: without it Nagle's algorithm holds each small publish ~40 ms.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    async def _run(self) -> None:
        retry_s = MIN_RETRY_S
        while True:
            try:
                async with self._client() as client:
                    self.connections += 1
                    retry_s = MIN_RETRY_S
                    self.online.set()
                    self._say(
                        {"event": "connected", "device": self.device_id, "broker": self.broker}
                    )
                    await self._publish_while_connected(client)
            except aiomqtt.MqttError as exc:
                raise_if_cancelling()
                self._say(
                    {
                        "event": "disconnected",
                        "device": self.device_id,
                        "broker": self.broker,
                        "reason": str(exc),
                        "retry_s": retry_s,
                    }
                )
            finally:
                self.online.clear()
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, MAX_RETRY_S)

    async def _publish_while_connected(self, client: aiomqtt.Client) -> None:
        """Publish until the connection breaks, raising the `MqttError` that says how."""
        publishing = asyncio.ensure_future(self._publish(client))
        watching = asyncio.ensure_future(self._watch(client))
        try:
            await asyncio.wait((publishing, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(publishing, watching)
        for task in (watching, publishing):
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure
        raise aiomqtt.MqttError("the broker closed the connection")

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        # The plug subscribes to nothing, so this only ends when the connection does.
        async for _ in client.messages:
            pass

    async def _publish(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            await self._publish_reading(client)
            # On a fixed schedule, skipping ticks already missed rather than bursting.
            next_tick += self._period_s
            now = loop.time()
            if next_tick < now:
                next_tick = now + self._period_s - (now - next_tick) % self._period_s
            await asyncio.sleep(next_tick - now)

    async def _publish_reading(self, client: aiomqtt.Client) -> None:
        # Stamps never go back, even if the wall clock does: the average's window needs it.
        at_ms = max(self._clock_ms(), self._last_at_ms)
        elapsed = time.monotonic() - self._started
        watts = round(max(0.0, self._power(elapsed, self._energy_wh)), 1)
        if self._last_at_ms:
            self._energy_wh += watts * (at_ms - self._last_at_ms) / 3_600_000
        self._last_at_ms = at_ms
        await client.publish(self.topics.live, _body(watts=watts, at_ms=at_ms), qos=1)
        self.published += 1
        self._average.add(at_ms, watts)
        if self._last_average_ms is None or at_ms - self._last_average_ms >= self._average_every_ms:
            await self._publish_average(client, at_ms)

    async def _publish_average(self, client: aiomqtt.Client, at_ms: int) -> None:
        mean = self._average.mean(at_ms)
        if mean is None:
            return
        body = _body(
            watts=round(mean, 1),
            at_ms=at_ms,
            window_s=self._window_s,
            samples=self._average.samples(at_ms),
        )
        await client.publish(self.topics.free, body, qos=1, retain=True)
        self._last_average_ms = at_ms


@dataclass(frozen=True, slots=True)
class PlugSettings:
    """A plug as its owner runs it (what `m2mpay device run plug` will take)."""

    device_id: str
    host: str
    port: int
    credentials: Credentials | None = None
    curve: Curve = "wind"  # a household's draw, swinging as a turbine's output does
    power_w: float = 2_000.0
    rate_hz: float = 2.0
    window_s: int = 60
    average_every_s: float = 5.0


async def run_plug(settings: PlugSettings, say: Say, stop: asyncio.Event) -> None:
    """Run the plug of `settings` until `stop` is set."""
    plug = SmartPlug(
        settings.device_id,
        settings.host,
        settings.port,
        power=power_curve(settings.curve, settings.power_w),
        credentials=settings.credentials,
        rate_hz=settings.rate_hz,
        window_s=settings.window_s,
        average_every_s=settings.average_every_s,
        say=say,
    )
    say(
        {
            "event": "starting",
            "device": settings.device_id,
            "broker": plug.broker,
            "live": plug.topics.live,
            "free": plug.topics.free,
            "username": settings.credentials.username if settings.credentials else None,
        }
    )
    async with plug:
        await stop.wait()
