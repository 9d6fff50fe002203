"""The simulated smart plug on the project's own Mosquitto, read with the real
`mosquitto_sub` as a user would: live power at about 2 Hz, the free topic's average the
mean of the recent live values, in the documented format; it reconnects when the broker
drops it and says goodbye when stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest

from m2mpay.access.sealed import Credentials
from m2mpay.devices.plug import PlugSettings, SmartPlug, run_plug
from m2mpay.devices.simulated import wind_power
from tests.conftest import Broker, run_mosquitto
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(120)

SUB: Final = "/usr/bin/mosquitto_sub"
PASSWD: Final = "/usr/bin/mosquitto_passwd"
# mosquitto_sub's stdout to a pipe is block-buffered; its SUBACK line must come at once.
LINE_BUFFERED: Final = ("/usr/bin/stdbuf", "-oL")
LIVE_KEYS: Final = {"watts", "at_ms"}
AVERAGE_KEYS: Final = {"watts", "at_ms", "window_s", "samples"}


def _device(name: str) -> str:
    # Fresh topics each run: the average is retained on the session's broker.
    return f"{name}-{secrets.token_hex(4)}"


def _swinging() -> Any:
    return wind_power(1_000.0, gust_period_s=2.0)


class Subscriber:
    """`mosquitto_sub` on a topic filter, QoS 1, until it has `count` messages."""

    def __init__(
        self, broker: Broker, topic: str, count: int, login: Credentials | None = None
    ) -> None:
        self._args = [
            *LINE_BUFFERED, SUB, "-h", broker.host, "-p", str(broker.port), "-t", topic,
            "-q", "1", "-v", "-d", "-C", str(count), "-W", "60",
        ]  # fmt: skip
        if login is not None:
            self._args += ["-u", login.username, "-P", login.password]
        self._process: asyncio.subprocess.Process | None = None
        self._seen: list[bytes] = []

    async def subscribed(self) -> Subscriber:
        """Started, and back once the broker acknowledged the subscription."""
        self._process = await asyncio.create_subprocess_exec(
            *self._args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert self._process.stdout is not None
        while True:
            line = await asyncio.wait_for(self._process.stdout.readline(), 30)
            assert line, "mosquitto_sub ended before its SUBACK"
            self._seen.append(line)
            if b"received SUBACK" in line:
                return self

    async def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """Every message it printed, as (topic, body), once it has them all."""
        assert self._process is not None
        out, err = await asyncio.wait_for(self._process.communicate(), 90)
        assert self._process.returncode == 0, err.decode()
        lines = b"".join(self._seen).decode().splitlines() + out.decode().splitlines()
        found = []
        for line in lines:
            if line.startswith("m2m/"):  # the rest is -d's account of the protocol
                topic, _, payload = line.partition(" ")
                found.append((topic, json.loads(payload)))
        return found

    def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()


@contextlib.asynccontextmanager
async def subscribed(
    broker: Broker, topic: str, count: int, login: Credentials | None = None
) -> AsyncIterator[Subscriber]:
    subscriber = Subscriber(broker, topic, count, login)
    try:
        yield await subscriber.subscribed()
    finally:
        subscriber.kill()


async def test_live_power_arrives_at_about_two_a_second_in_the_documented_format(
    mosquitto: Broker,
) -> None:
    device = _device("plug-live")
    plug = SmartPlug(device, mosquitto.host, mosquitto.port, power=_swinging())
    async with subscribed(mosquitto, f"m2m/{device}/live", 12) as reader, plug:
        messages = await reader.messages()
    assert [topic for topic, _ in messages] == [f"m2m/{device}/live"] * 12
    stamps = []
    for _, body in messages:
        assert set(body) == LIVE_KEYS
        assert isinstance(body["watts"], float)
        assert 300.0 <= body["watts"] <= 1_000.0  # the curve's range: 30 % calm to rated
        assert body["watts"] == round(body["watts"], 1)
        assert isinstance(body["at_ms"], int)
        stamps.append(body["at_ms"])
    assert stamps == sorted(set(stamps))
    # By the plug's own stamps, loosely: 11 intervals of 0.5 s, whatever the load here.
    assert 11 * 250 <= stamps[-1] - stamps[0] <= 11 * 1_000
    assert len({body["watts"] for _, body in messages}) > 1  # it follows its curve


async def test_the_free_topic_carries_the_mean_of_the_recent_live_values(
    mosquitto: Broker,
) -> None:
    device = _device("plug-average")
    plug = SmartPlug(
        device,
        mosquitto.host,
        mosquitto.port,
        power=_swinging(),
        rate_hz=10.0,
        window_s=1,
        average_every_s=0.5,
    )
    # Subscribed before the plug starts: every live value it publishes is here.
    async with subscribed(mosquitto, f"m2m/{device}/#", 48) as reader, plug:
        messages = await reader.messages()
    live = [(b["at_ms"], b["watts"]) for t, b in messages if t == f"m2m/{device}/live"]
    averages = [b for t, b in messages if t == f"m2m/{device}/1m"]
    assert len(averages) >= 3
    assert len(live) >= 30
    for average in averages:
        assert set(average) == AVERAGE_KEYS
        assert average["window_s"] == 1
        recent = [w for (at_ms, w) in live if average["at_ms"] - 1_000 < at_ms <= average["at_ms"]]
        assert average["samples"] == len(recent)
        assert average["at_ms"] in {at_ms for at_ms, _ in live}  # the newest value's time
        assert math.isclose(average["watts"], sum(recent) / len(recent), abs_tol=0.05 + 1e-9)
    # The window moves: later averages leave the first values out.
    assert averages[-1]["samples"] < len([1 for at_ms, _ in live if at_ms <= averages[-1]["at_ms"]])


async def test_a_late_reader_gets_the_latest_average_at_once(mosquitto: Broker) -> None:
    device = _device("plug-retained")
    plug = SmartPlug(
        device, mosquitto.host, mosquitto.port, power=_swinging(), rate_hz=10.0, window_s=1
    )
    async with subscribed(mosquitto, f"m2m/{device}/1m", 1) as first, plug:
        [(_, published)] = await first.messages()
    # The plug is gone: only a retained message can reach this reader.
    async with subscribed(mosquitto, f"m2m/{device}/1m", 1) as late:
        [(_, retained)] = await late.messages()
    assert set(retained) == AVERAGE_KEYS
    assert retained["at_ms"] >= published["at_ms"]


MQTT_DISCONNECT: Final = b"\xe0\x00"


class Proxy:
    """A TCP relay to the broker whose connections the test can cut, as a broker or a
    network that drops its clients would; it keeps what each client sent."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self.sent: list[bytearray] = []  # what each connection's client sent, in order
        self.ended: list[bool] = []  # whether each client ended its side
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._broker.host, self._broker.port)
        self._writers += [writer, up_writer]
        index = len(self.sent)
        self.sent.append(bytearray())
        self.ended.append(False)
        for source, sink, kept in ((reader, up_writer, index), (up_reader, writer, None)):
            task = asyncio.ensure_future(self._pipe(source, sink, kept))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, kept: int | None
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                if kept is not None:
                    self.sent[kept] += data
                sink.write(data)
                await sink.drain()
            if kept is not None:
                self.ended[kept] = True
        sink.close()

    def cut(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()


@dataclass(frozen=True)
class ProxiedPlug:
    """A plug at 10 Hz that reaches the broker through a `Proxy`, and what it says."""

    device: str
    plug: SmartPlug
    proxy: Proxy
    events: list[dict[str, Any]]


@pytest.fixture
async def proxied(mosquitto: Broker) -> AsyncIterator[ProxiedPlug]:
    device = _device("plug-proxied")
    events: list[dict[str, Any]] = []
    async with Proxy(mosquitto) as proxy:
        plug = SmartPlug(
            device, "127.0.0.1", proxy.port, power=_swinging(), rate_hz=10.0, say=events.append
        )
        yield ProxiedPlug(device, plug, proxy, events)
        await plug.stop()


async def test_stop_is_clean(proxied: ProxiedPlug) -> None:
    plug, proxy, events = proxied.plug, proxied.proxy, proxied.events
    async with plug:
        await eventually(lambda: plug.published >= 3)
        assert plug.online.is_set()
    assert not plug.online.is_set()
    published = plug.published
    # It said DISCONNECT, then closed its side, rather than dropping the socket.
    await eventually(lambda: proxy.ended == [True])
    assert proxy.sent[0].endswith(MQTT_DISCONNECT)
    await asyncio.sleep(0.3)
    assert plug.published == published  # nothing runs on after the block
    assert [e["event"] for e in events] == ["connected", "stopped"]
    await plug.stop()  # a second stop is harmless
    assert [e["event"] for e in events] == ["connected", "stopped"]


async def test_it_reconnects_when_the_broker_drops_it(
    mosquitto: Broker, proxied: ProxiedPlug
) -> None:
    plug, proxy = proxied.plug, proxied.proxy
    async with plug:
        await eventually(lambda: plug.published >= 3)
        proxy.cut()
        await eventually(lambda: plug.connections == 2)
        async with subscribed(mosquitto, f"m2m/{proxied.device}/live", 3) as reader:
            after = await reader.messages()
    assert len(after) == 3
    kinds = [e["event"] for e in proxied.events]
    assert kinds[:3] == ["connected", "disconnected", "connected"]
    assert kinds[-1] == "stopped"


async def test_it_connects_with_its_own_credentials_and_never_says_the_password(
    mosquitto: Broker,
) -> None:
    device = _device("plug-own")
    credentials = Credentials(f"{device}-owner", "a-Plug-password-of-its-own")
    events: list[dict[str, Any]] = []
    async with Proxy(mosquitto) as proxy:
        settings = PlugSettings(
            device, "127.0.0.1", proxy.port, credentials=credentials, rate_hz=10.0
        )
        stop = asyncio.Event()
        running = asyncio.ensure_future(run_plug(settings, events.append, stop))
        try:
            async with subscribed(mosquitto, f"m2m/{device}/live", 2) as reader:
                assert len(await reader.messages()) == 2
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
    # Its CONNECT carried its own username (and so its password) to the broker.
    assert credentials.username.encode() in proxy.sent[0]
    assert credentials.password.encode() in proxy.sent[0]
    assert [e["event"] for e in events] == ["starting", "connected", "stopped"]
    assert events[0]["username"] == credentials.username
    assert events[0]["live"] == f"m2m/{device}/live"
    assert events[0]["free"] == f"m2m/{device}/1m"
    assert credentials.password not in repr(events)


PLUG_LOGIN: Final = Credentials("plug-owner", "the-Plugs-own-password")
READER_LOGIN: Final = Credentials("reader", "a-Readers-own-password")


@pytest.fixture(scope="module")
def password_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto of our own that lets in only the clients in its password file."""
    workdir = tmp_path_factory.mktemp("mosquitto-passwords")
    passwords = workdir / "passwords"
    for index, login in enumerate((PLUG_LOGIN, READER_LOGIN)):
        create = ["-c"] if index == 0 else []
        subprocess.run(
            [PASSWD, *create, "-b", str(passwords), login.username, login.password],
            check=True,
            capture_output=True,
        )
    settings = f"allow_anonymous false\npassword_file {passwords}\nset_tcp_nodelay true\n"
    with run_mosquitto(workdir, settings) as broker:
        yield broker


async def test_refused_credentials_are_retried_ever_more_slowly_and_said(
    password_broker: Broker,
) -> None:
    device = _device("plug-refused")
    events: list[dict[str, Any]] = []
    wrong = Credentials(PLUG_LOGIN.username, "not-the-Plugs-password")
    plug = SmartPlug(
        device,
        password_broker.host,
        password_broker.port,
        power=_swinging(),
        credentials=wrong,
        say=events.append,
    )
    async with plug:
        await eventually(lambda: len(events) >= 3)
    assert plug.connections == 0
    assert plug.published == 0
    refusals = [e for e in events if e["event"] == "disconnected"]
    assert len(refusals) >= 3
    assert all("authori" in e["reason"].lower() for e in refusals)
    delays = [e["retry_s"] for e in refusals]
    assert delays == sorted(delays)
    assert delays[1] > delays[0]
    assert events[-1]["event"] == "stopped"
    assert wrong.password not in repr(events)


async def test_with_its_own_credentials_it_is_let_in_and_read(password_broker: Broker) -> None:
    device = _device("plug-let-in")
    plug = SmartPlug(
        device,
        password_broker.host,
        password_broker.port,
        power=_swinging(),
        credentials=PLUG_LOGIN,
        rate_hz=10.0,
    )
    topic = f"m2m/{device}/live"
    async with subscribed(password_broker, topic, 3, READER_LOGIN) as reader, plug:
        messages = await reader.messages()
    assert [t for t, _ in messages] == [topic] * 3
    assert plug.connections == 1


async def test_a_plug_stopped_at_any_moment_of_its_publishing_stops(
    mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 500 Hz most stops fall between a publish and its PUBACK, where a cancellation
    # can be lost (Python 3.11's wait_for, aiomqtt's errors; about one stop in fifteen)
    # and the stop used to hang for ever; now it is asked again.
    monkeypatch.setattr("m2mpay.lifecycle.CANCEL_AGAIN_S", 0.2)
    stopped = 0
    for round_ in range(30):
        plug = SmartPlug(
            f"plug-{secrets.token_hex(3)}",
            mosquitto.host,
            mosquitto.port,
            power=_swinging(),
            rate_hz=500.0,
        )
        await plug.start()
        await asyncio.wait_for(plug.online.wait(), 10)
        await asyncio.sleep(0.001 * (round_ % 10))
        # Not wait_for: its own cancellation of a hung stop would end that stop.
        stopping = asyncio.ensure_future(plug.stop())
        done, _ = await asyncio.wait((stopping,), timeout=15)
        assert done, f"round {round_}: the plug had not stopped after 15 s"
        stopped += 1
    assert stopped == 30
