"""The node's broker as a user meets it: the real `mosquitto_sub` and `mosquitto_pub`.

Each check of absence publishes a sentinel on a public topic after the message under
test and waits for it: Mosquitto delivers to one subscriber in order, so once the
sentinel is in, the message would have been too.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Sequence

import pytest

from m2mpay.access.broker import TopicAccess
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.mosquitto import BrokerAddress, ManagedMosquitto
from m2mpay.lifecycle import cancel_and_wait
from tests.access.conftest import unique
from tests.access.probes import SENTINEL
from tests.waiting import eventually

User = tuple[str, str]


class Subscriber:
    """A `mosquitto_sub` (QoS 1, debug output) on some filters and the sentinel."""

    def __init__(
        self,
        address: BrokerAddress,
        user: User | None,
        filters: Sequence[str],
        *,
        session: str | None = None,
    ) -> None:
        self.address, self.user, self.filters, self.session = address, user, filters, session
        self.lines: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Subscriber:
        auth = ["-u", self.user[0], "-P", self.user[1]] if self.user else []
        session = ["-c", "-i", self.session] if self.session else []
        topics = [arg for topic in (*self.filters, SENTINEL) for arg in ("-t", topic)]
        self._process = await asyncio.create_subprocess_exec(
            # Line-buffered: its debug lines (CONNECT, SUBACK) are printf'd without a flush.
            *("stdbuf", "-oL", "mosquitto_sub"),
            *("-h", self.address.host, "-p", str(self.address.port), "-q", "1", "-v", "-d"),
            *auth,
            *session,
            *topics,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.ensure_future(self._read(self._process))
        try:
            await eventually(lambda: bool(self.subscribed), timeout=10)
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aenter__(self) -> Subscriber:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def subscribed(self) -> list[list[int]]:
        """Each SUBACK's codes, one per filter (128: refused)."""
        return [
            [int(code) for code in line.split("): ", 1)[1].split(", ")]
            for line in self.lines
            if line.startswith("Subscribed (mid")
        ]

    @property
    def connects(self) -> int:
        return sum(1 for line in self.lines if line.endswith("sending CONNECT"))

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def received(self, topic: str) -> list[str]:
        prefix = topic + " "
        return [line[len(prefix) :] for line in self.lines if line.startswith(prefix)]

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
        if self._reader is not None:
            await self._reader


class Node:
    """The node's administrator and a device's publisher on the node's broker."""

    def __init__(self, dynsec: DynsecBroker, publisher: User) -> None:
        self.dynsec, self.publisher = dynsec, publisher
        self.address = dynsec.address

    async def client(self, *reads: str) -> User:
        user = (unique("buyer"), secrets.token_urlsafe(16))
        await self.dynsec.add_client(*user)
        for topic in reads:
            await self.dynsec.allow(user[0], TopicAccess(topic, read=True, write=False))
        return user

    async def publish(self, topic: str, payload: str, user: User | None = None) -> None:
        who = user or self.publisher
        process = await asyncio.create_subprocess_exec(
            "mosquitto_pub",
            *("-h", self.address.host, "-p", str(self.address.port), "-q", "1"),
            *("-u", who[0], "-P", who[1], "-t", topic, "-m", payload),
        )
        assert await process.wait() == 0

    async def settle(self, *subscribers: Subscriber) -> None:
        """Publish a sentinel and wait until every subscriber has it."""
        marker = secrets.token_hex(6)
        await self.publish(SENTINEL, marker)
        await eventually(
            lambda: all(marker in sub.received(SENTINEL) for sub in subscribers), timeout=10
        )


@pytest.fixture
async def node(managed_mosquitto: ManagedMosquitto) -> AsyncIterator[Node]:
    async with DynsecBroker(managed_mosquitto.address) as dynsec:
        await dynsec.prepare()
        await dynsec.set_public(["m2m/+/1m", SENTINEL])
        publisher = (unique("plug"), secrets.token_urlsafe(16))
        await dynsec.add_client(*publisher)
        for topic in ("m2m/#", "probe/#"):
            await dynsec.allow(publisher[0], TopicAccess(topic, read=False, write=True))
        yield Node(dynsec, publisher)


def plug() -> tuple[str, str]:
    name = f"plug{secrets.token_hex(3)}"
    return f"m2m/{name}/live", f"m2m/{name}/1m"


async def test_an_anonymous_reader_gets_the_free_average_and_nothing_live(node: Node) -> None:
    live, free = plug()
    async with Subscriber(node.address, None, [free, live]) as reader:
        assert reader.subscribed[-1] == [1, 128, 1]  # the live filter is refused
        await node.publish(free, "avg 41.5")
        await node.publish(live, "power 40.2")
        await node.settle(reader)
        assert reader.received(free) == ["avg 41.5"]
        assert reader.received(live) == []


async def test_an_allowed_client_reads_live_messages(node: Node) -> None:
    live, free = plug()
    buyer = await node.client(live)
    async with Subscriber(node.address, buyer, [live, free]) as reader:
        assert reader.subscribed[-1] == [1, 1, 1]
        for watts in ("40.1", "40.2", "40.3"):
            await node.publish(live, watts)
        await node.publish(free, "avg 40.2")
        await node.settle(reader)
        assert reader.received(live) == ["40.1", "40.2", "40.3"]
        assert reader.received(free) == ["avg 40.2"]


async def test_grants_change_without_a_gap_and_a_revoke_stops_a_connected_reader(
    node: Node, managed_mosquitto: ManagedMosquitto
) -> None:
    live, _ = plug()
    other, another = plug()[0], plug()[0]
    buyer = await node.client(live)
    # Mosquitto 2.0.11 links a client to its roles fully only when it loads them from its
    # file: before a restart even addRoleACL would not disconnect this client, after it
    # it would. A restart makes the buyer as a long-lived client is (and the node's
    # administrator reconnects on its own).
    managed_mosquitto.stop()
    managed_mosquitto.start()
    async with Subscriber(node.address, buyer, [live]) as reader:
        stream = await asyncio.create_subprocess_exec(
            "mosquitto_pub",
            *("-h", node.address.host, "-p", str(node.address.port), "-q", "1", "-l"),
            *("-u", node.publisher[0], "-P", node.publisher[1], "-t", live),
            stdin=asyncio.subprocess.PIPE,
        )
        sent = [f"w{index}" for index in range(60)]

        async def publish_while_changing() -> None:
            assert stream.stdin is not None
            for line in sent:
                stream.stdin.write(f"{line}\n".encode())
                await stream.stdin.drain()
                await asyncio.sleep(0.002)
            stream.stdin.close()

        async def change_the_role() -> None:
            # Every change rewrites the reader's role: a second feed bought, then given up.
            while stream.returncode is None and len(reader.received(live)) < len(sent):
                await node.dynsec.allow(buyer[0], TopicAccess(other, read=True, write=False))
                await node.dynsec.allow(buyer[0], TopicAccess(another, read=True, write=False))
                await node.dynsec.revoke(buyer[0], other)
                await node.dynsec.revoke(buyer[0], another)

        changes = asyncio.ensure_future(change_the_role())
        try:
            await publish_while_changing()
            assert await stream.wait() == 0
            await node.settle(reader)
            await changes
        finally:
            if stream.returncode is None:
                stream.kill()
                await stream.wait()
            await cancel_and_wait(changes)
        assert reader.received(live) == sent
        assert reader.connects == 1
        assert reader.alive

        await node.dynsec.revoke(buyer[0], live)
        await node.publish(live, "after the revoke")
        await node.settle(reader)
        assert "after the revoke" not in reader.received(live)
        assert reader.connects == 1
        assert reader.alive  # cut off from the topic, not from the broker


async def test_a_persistent_session_offline_during_the_revoke_gets_nothing_after_it(
    node: Node,
) -> None:
    live, _ = plug()
    buyer = await node.client(live)
    session = unique("session")
    async with Subscriber(node.address, buyer, [live], session=session) as reader:
        await node.publish(live, "while paid")
        await node.settle(reader)
        assert reader.received(live) == ["while paid"]

    await node.dynsec.revoke(buyer[0], live)
    await node.publish(live, "after the revoke, offline")
    async with Subscriber(node.address, buyer, [live], session=session) as back:
        await node.publish(live, "after the revoke, online")
        await node.settle(back)
        assert back.received(live) == []
        assert back.subscribed[-1][0] == 128  # and it cannot subscribe again


async def test_publishing_where_it_may_only_read_or_on_control_gets_nothing_through(
    node: Node,
) -> None:
    live, free = plug()
    buyer = await node.client(live)
    watcher_user = await node.client(live)
    intruder = unique("intruder")
    command = {
        "commands": [
            {"command": "createClient", "username": intruder, "password": "let me in"},
            {"command": "setDefaultACLAccess", "acls": [{"acltype": "subscribe", "allow": True}]},
        ]
    }
    async with Subscriber(node.address, watcher_user, [live, free]) as watcher:
        await node.publish(live, "forged reading", user=buyer)
        await node.publish(free, "forged average", user=buyer)
        await node.publish("$CONTROL/dynamic-security/v1", json.dumps(command), user=buyer)
        await node.settle(watcher)
        assert watcher.received(live) == []
        assert watcher.received(free) == []
    found = await node.dynsec._ask({"command": "getClient", "username": intruder})
    assert found.get("error") == "Client not found"
    defaults = await node.dynsec._ask({"command": "getDefaultACLAccess"})
    subscribe = [a for a in defaults["data"]["acls"] if a["acltype"] == "subscribe"]
    assert subscribe == [{"acltype": "subscribe", "allow": False}]
