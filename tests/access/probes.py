"""What a client can do on a broker, asked the way each broker can answer it.

`MemoryProbe` asks `MemoryBroker`'s `may_*`; `MqttProbe` tries with real MQTT clients
(aiomqtt) on the node's Mosquitto. Absence is never waited for with a sleep: after the
message under test, a sentinel goes on a public topic along the same path, and once
the sentinel is in, anything the message would have caused is in too (Mosquitto
delivers to one subscriber in order, and acknowledges a QoS-1 publish only after
queueing it to the subscribers).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from abc import ABC, abstractmethod

import aiomqtt

from m2mpay.access.broker import Broker, MemoryBroker, TopicAccess
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.topics import suback_refused

SENTINEL = "probe/sentinel"
DEADLINE = 10.0


class Probe(ABC):
    """Tries what a client (`None`: anonymous) can do."""

    broker: Broker

    async def set_public(self, *topics: str) -> None:
        """The public filters, plus the probe's sentinel."""
        await self.broker.set_public([*topics, SENTINEL])

    @abstractmethod
    async def connects(self, username: str, password: str) -> bool: ...

    @abstractmethod
    async def subscribes(self, user: tuple[str, str] | None, topic_filter: str) -> bool: ...

    @abstractmethod
    async def receives(self, user: tuple[str, str] | None, topic_filter: str, topic: str) -> bool:
        """Whether a client subscribed to `topic_filter` gets a message published on `topic`."""

    @abstractmethod
    async def publishes(self, user: tuple[str, str] | None, topic: str) -> bool:
        """Whether what the client publishes on `topic` gets through."""

    async def reaches_control(self, user: tuple[str, str] | None) -> bool:
        """Whether the client can subscribe to or publish on `$CONTROL/#` at all."""
        return await self.subscribes(user, "$CONTROL/#") or await self.publishes(
            user, "$CONTROL/dynamic-security/v1"
        )


class MemoryProbe(Probe):
    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = self.memory = broker

    async def connects(self, username: str, password: str) -> bool:
        return self.memory.logs_in(username, password)

    async def subscribes(self, user: tuple[str, str] | None, topic_filter: str) -> bool:
        return self.memory.may_subscribe(self._name(user), topic_filter)

    async def receives(self, user: tuple[str, str] | None, topic_filter: str, topic: str) -> bool:
        name = self._name(user)
        return self.memory.may_subscribe(name, topic_filter) and self.memory.may_receive(
            name, topic
        )

    async def publishes(self, user: tuple[str, str] | None, topic: str) -> bool:
        return self.memory.may_publish(self._name(user), topic)

    def _name(self, user: tuple[str, str] | None) -> str | None:
        if user is None:
            return None
        return user[0] if self.memory.logs_in(*user) else None


class MqttProbe(Probe):
    """Real MQTT clients; a publisher client of its own writes the test messages."""

    def __init__(self, broker: DynsecBroker) -> None:
        self.broker = self.dynsec = broker
        self.address = broker.address
        self.publisher = (f"probe-pub-{secrets.token_hex(4)}", secrets.token_urlsafe(12))

    async def setup(self) -> None:
        await self.broker.add_client(*self.publisher)
        for topic in ("m2m/#", "probe/#"):
            await self.broker.allow(self.publisher[0], TopicAccess(topic, read=False, write=True))

    def _client(self, user: tuple[str, str] | None) -> aiomqtt.Client:
        username, password = user if user is not None else (None, None)
        return aiomqtt.Client(
            self.address.host,
            self.address.port,
            identifier=f"probe-{secrets.token_hex(6)}",
            username=username,
            password=password,
            timeout=DEADLINE,
        )

    async def connects(self, username: str, password: str) -> bool:
        try:
            async with self._client((username, password)):
                return True
        except aiomqtt.MqttCodeError:
            return False

    async def subscribes(self, user: tuple[str, str] | None, topic_filter: str) -> bool:
        async with self._client(user) as client:
            granted = await client.subscribe(topic_filter, qos=1)
            return not suback_refused(granted[0])

    async def receives(self, user: tuple[str, str] | None, topic_filter: str, topic: str) -> bool:
        marker = secrets.token_hex(8)
        async with self._client(user) as client:
            await client.subscribe([(topic_filter, 1), (SENTINEL, 1)])
            async with self._client(self.publisher) as publisher:
                await publisher.publish(topic, marker, qos=1)
                await publisher.publish(SENTINEL, marker, qos=1)
            return await self._before_sentinel(client, topic, marker)

    async def publishes(self, user: tuple[str, str] | None, topic: str) -> bool:
        if topic.startswith("$CONTROL/"):
            return await self._commands_obeyed(user, topic)
        marker = secrets.token_hex(8)
        admin = (self.address.admin_username, self.address.admin_password)
        async with self._client(admin) as observer:  # the administrator reads everything
            await observer.subscribe([(topic, 1), (SENTINEL, 1)])
            async with self._client(user) as client:
                await client.publish(topic, marker, qos=1)
            async with self._client(self.publisher) as publisher:
                await publisher.publish(SENTINEL, marker, qos=1)
            return await self._before_sentinel(observer, topic, marker)

    async def _before_sentinel(self, client: aiomqtt.Client, topic: str, marker: str) -> bool:
        seen = False
        async with asyncio.timeout(DEADLINE):
            async for message in client.messages:
                if message.payload != marker.encode():
                    continue
                if message.topic.matches(SENTINEL):
                    return seen
                seen = seen or message.topic.value == topic
        raise AssertionError("unreachable")

    async def _commands_obeyed(self, user: tuple[str, str] | None, topic: str) -> bool:
        # `$CONTROL` messages are consumed by the plugin, not delivered: whether one got
        # through shows in what it would have changed. A QoS-1 publish is acknowledged
        # after the plugin has handled it, so the check that follows sees its effect.
        intruder = f"intruder-{secrets.token_hex(4)}"
        body = {"commands": [{"command": "createRole", "rolename": intruder}]}
        async with self._client(user) as client:
            await client.publish(topic, json.dumps(body), qos=1)
        answer = await self.dynsec._ask({"command": "getRole", "rolename": intruder})
        return "error" not in answer
