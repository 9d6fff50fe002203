"""MQTT transport (aiomqtt 2.5 over a broker such as Mosquitto): logical links over topics.

A transport is bound to its own address and reaches peers by address through
one broker; the topic scheme and the link header are in
`m2mpay.wire.mqtt_frames`. Endpoints are ``mqtt://HOST:PORT/<address>``.

Everything is published with QoS 1. Publishing does not wait for each PUBACK:
up to `window` publishes are in flight per transport and `send` waits only
when the window is full, so a sender streams at broker speed while memory
stays bounded. Incoming messages are dispatched straight from aiomqtt's
callback (through its `queue_type` hook), saving the queue, the task and the
`asyncio.wait` that aiomqtt's message iterator spends on every message.

Measured on loopback: the per-message cost is mostly paho-mqtt's pure-Python
packet handling (~150 µs of CPU per message and side, PUBACKs included), so a
link carries about 3,000–4,000 frames/s; one-way latency is ~0.6 ms.

When the broker connection breaks, every link breaks with it (its `recv`
raises `ConnectionClosed`) and the transport must be restarted: with a clean
MQTT session nothing sent in between would be delivered anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import aiomqtt

from m2mpay.crypto import Address
from m2mpay.errors import TransportError
from m2mpay.lifecycle import cancel_and_wait, run_in_background
from m2mpay.wire.mqtt_frames import (
    FrameKind,
    Header,
    gone_sender,
    gone_topic,
    inbox_filter,
    pack,
    parse_mqtt_endpoint,
    sender_of,
    unpack,
)
from m2mpay.wire.mqtt_link import MqttLink
from m2mpay.wire.transport import Link, Transport

__all__ = ["MqttTransport", "parse_mqtt_endpoint"]

_log = logging.getLogger(__name__)

# Incoming links held at once (handshaking or in use): anyone who reaches the broker can
# publish link opens under any sender address, so past this bound OPENs go unanswered and
# unremembered; an honest peer retries after its connect timeout.
MAX_INCOMING: Final = 1024

# Link ids a transport closed recently: a late OPEN redelivery for one of them
# must not open a ghost link.
_CLOSED_MEMORY: Final = 1024


def _dispatching_queue(handler: Callable[[aiomqtt.Message], None]) -> type[Any]:
    """An asyncio.Queue whose `put_nowait` hands each message to `handler` at once."""

    class DispatchingQueue(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            handler(item)

    return DispatchingQueue


class MqttTransport(Transport):
    """Links to peers by address through one MQTT broker; see the module docstring.

    `connect_timeout` bounds reaching the broker and a peer's answer to `connect`;
    `publish_timeout` is how long a PUBACK may take before the broker is deemed
    lost; `window` is the number of unacknowledged publishes before `send` waits;
    `max_incoming` bounds the incoming links held at once.
    """

    def __init__(
        self,
        broker_host: str,
        broker_port: int,
        own_address: Address,
        *,
        connect_timeout: float = 5.0,
        publish_timeout: float = 30.0,
        window: int = 64,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        max_incoming: int = MAX_INCOMING,
    ) -> None:
        self._host = broker_host
        self._port = broker_port
        self._own = Address(own_address)
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._window = window
        self._username = username
        self._password = password
        self._keepalive = keepalive
        self._max_incoming = max_incoming
        self._incoming_count = 0
        self._instance = secrets.token_bytes(8)
        self._client: aiomqtt.Client | None = None
        self._watch: asyncio.Task[None] | None = None
        self._inflight: deque[asyncio.Task[None]] = deque()
        self._links: dict[tuple[Address, bytes], MqttLink] = {}
        self._peer_instances: dict[Address, bytes] = {}
        self._watched: set[Address] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._recently_closed: deque[tuple[Address, bytes]] = deque(maxlen=_CLOSED_MEMORY)
        self._incoming: asyncio.Queue[MqttLink | None] = asyncio.Queue()
        self._failure: str | None = None
        self._stopped = False

    @property
    def own_address(self) -> Address:
        return self._own

    @property
    def endpoint(self) -> str:
        return f"mqtt://{self._host}:{self._port}/{self._own.checksum}"

    @property
    def instance(self) -> bytes:
        return self._instance

    @property
    def incoming_links(self) -> int:
        """Links peers opened to this transport that are not closed yet."""
        return self._incoming_count

    @property
    def known_peers(self) -> frozenset[Address]:
        """Peers this transport holds anything for: a link, an instance, a will subscription."""
        return frozenset(
            {key[0] for key in self._links} | set(self._peer_instances) | self._watched
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None:
            return
        if self._stopped:
            raise TransportError("this MQTT transport was stopped; make a new one")
        client = aiomqtt.Client(
            self._host,
            self._port,
            identifier=f"m2mpay-{self._own.hex()[:12]}-{self._instance.hex()}",
            username=self._username,
            password=self._password,
            queue_type=_dispatching_queue(self._on_message),
            clean_session=True,
            keepalive=self._keepalive,
            timeout=self._connect_timeout,
            max_inflight_messages=self._window,
            # Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to
            # small publishes in each direction (measured: 88 ms round trips on
            # loopback). The broker needs the same (`set_tcp_nodelay true` in
            # mosquitto.conf) or its deliveries to us wait ~40 ms each.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            # If this process dies, the broker tells our peers which instance is gone.
            will=aiomqtt.Will(gone_topic(self._own), self._instance, qos=1),
        )
        client.pending_calls_threshold = self._window + 16
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise TransportError(
                f"cannot reach MQTT broker {self._host}:{self._port}: {exc}"
            ) from None
        try:
            await client.subscribe(inbox_filter(self._own), qos=1)
        except aiomqtt.MqttError as exc:
            await client.__aexit__(None, None, None)
            raise TransportError(f"cannot subscribe on {self._host}:{self._port}: {exc}") from None
        self._client = client
        self._watch = asyncio.ensure_future(self._watch_broker(client))

    async def _watch_broker(self, client: aiomqtt.Client) -> None:
        # Messages never reach the queue (they are dispatched on arrival), so this
        # iteration only ends when the broker connection does.
        try:
            async for _ in client.messages:
                pass
        except aiomqtt.MqttError as exc:
            self._fail(f"lost the MQTT broker {self._host}:{self._port}: {exc}")

    def _fail(self, reason: str) -> None:
        """The broker connection is gone: every link is broken."""
        if self._failure is not None or self._stopped:
            return
        self._failure = reason
        for link in list(self._links.values()):
            link.broken(reason)
        self._links.clear()
        self._incoming_count = 0
        self._incoming.put_nowait(None)

    async def stop(self) -> None:
        if self._stopped:
            return
        for link in list(self._links.values()):
            with contextlib.suppress(TransportError):
                await link.close()
        self._stopped = True
        self._incoming.put_nowait(None)
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=self._connect_timeout)
        for task in list(self._background):
            task.cancel()
        await cancel_and_wait(self._watch)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)
        for link in list(self._links.values()):
            link.broken("transport stopped")
        self._links.clear()
        self._incoming_count = 0

    # -- publishing --------------------------------------------------------------------

    def _check_usable(self) -> aiomqtt.Client:
        if self._failure is not None:
            raise TransportError(self._failure)
        if self._client is None or self._stopped:
            raise TransportError("the MQTT transport is not running")
        return self._client

    def start_publish(self, topic: str, payload: bytes) -> None:
        """Start a QoS-1 publish now; publishes reach the broker in the order started."""
        client = self._check_usable()
        # A task's first step runs the (synchronous) paho publish, and tasks start
        # in creation order, so order is kept without awaiting anything here.
        task = asyncio.ensure_future(
            client.publish(topic, payload, qos=1, timeout=self._publish_timeout)
        )
        task.add_done_callback(self._published)
        self._inflight.append(task)

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1, in call order; waits only while `window` publishes are unacked."""
        self.start_publish(topic, payload)
        if len(self._inflight) > self._window:
            await asyncio.wait((self._inflight[0],))
            self._check_usable()

    def _published(self, task: asyncio.Task[None]) -> None:
        inflight = self._inflight
        while inflight and inflight[0].done():
            inflight.popleft()
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._fail(f"publish through {self._host}:{self._port} failed: {exc}")

    # -- links -------------------------------------------------------------------------

    async def connect(self, endpoint: str) -> Link:
        self._check_usable()
        host, port, peer = parse_mqtt_endpoint(endpoint)
        if (host, port) != (self._host, self._port):
            raise TransportError(
                f"{endpoint} is on another broker; this transport uses {self._host}:{self._port}"
            )
        if peer == self._own:
            raise TransportError("cannot open a link to this transport's own address")
        await self._watch_peer(peer)
        link = MqttLink(self, peer, secrets.token_bytes(8), initiator=True)
        self._links[(peer, link.link_id)] = link
        try:
            await self.publish(link.topic, pack(FrameKind.OPEN, self._instance, link.link_id, 0))
            # Not wait_for: on Python 3.11 it can drop a cancellation (see cancel_and_wait).
            async with asyncio.timeout(self._connect_timeout):
                await link.opened()
        except TimeoutError:
            self._discard(link)
            link.broken("no answer")
            raise TransportError(
                f"no answer from {peer.checksum} through {host}:{port} within "
                f"{self._connect_timeout:g} s (is it online?)"
            ) from None
        except BaseException:
            self._discard(link)
            link.broken("connect failed")
            raise
        return link

    async def accept(self) -> Link:
        if self._stopped or self._failure is not None:
            raise TransportError(self._failure or "the MQTT transport is stopped")
        link = await self._incoming.get()
        if link is None:
            self._incoming.put_nowait(None)
            raise TransportError(self._failure or "the MQTT transport is stopped")
        return link

    async def _watch_peer(self, peer: Address) -> None:
        """Subscribe to `peer`'s will notices, once per peer and transport."""
        if peer in self._watched:
            return
        self._watched.add(peer)
        client = self._check_usable()
        try:
            await client.subscribe(gone_topic(peer), qos=1)
        except aiomqtt.MqttError as exc:
            self._watched.discard(peer)
            raise TransportError(f"cannot watch {peer.checksum} on the broker: {exc}") from None

    def _watch_peer_soon(self, peer: Address) -> None:
        if peer in self._watched:
            return
        run_in_background(self._background, self._watch_peer(peer), _background_failed)

    def _discard(self, link: MqttLink) -> None:
        key = (link.peer, link.link_id)
        if self._links.get(key) is link:
            self._unlink(key)
            self._forget_if_unlinked(link.peer)
        self._recently_closed.append(key)

    def _unlink(self, key: tuple[Address, bytes]) -> MqttLink:
        link = self._links.pop(key)
        if not link.initiator:
            self._incoming_count -= 1
        return link

    def _forget_if_unlinked(self, peer: Address) -> None:
        """Drops what is kept per peer once its last link is gone, so that strangers
        publishing under forged addresses leave nothing behind (a returning peer is
        simply learnt again)."""
        if any(key[0] == peer for key in self._links):
            return
        self._peer_instances.pop(peer, None)
        if peer in self._watched and self._client is not None and not self._stopped:
            self._watched.discard(peer)
            run_in_background(
                self._background, self._unwatch_peer(self._client, peer), _background_failed
            )

    async def _unwatch_peer(self, client: aiomqtt.Client, peer: Address) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.unsubscribe(gone_topic(peer))

    # -- receiving ---------------------------------------------------------------------

    def _on_message(self, message: aiomqtt.Message) -> None:
        # Called from paho's read callback: an exception here would be taken for a
        # broken connection, so nothing may escape.
        try:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                return
            topic = message.topic.value
            sender = sender_of(topic, self._own)
            if sender is None:
                gone = gone_sender(topic)
                if gone is not None:
                    self._peer_gone(gone, bytes(payload))
                return
            parsed = unpack(bytes(payload))
            if parsed is not None:
                self._on_frame(sender, *parsed)
        except Exception:
            _log.exception("dropped an MQTT message that could not be handled")

    def _on_frame(self, sender: Address, header: Header, payload: bytes) -> None:
        if self._stopped:
            return
        key = (sender, header.link)
        link = self._links.get(key)
        if link is None:
            # Only an OPEN may make this transport hold anything for a sender it has no
            # link with: a forged ACCEPT, DATA or CLOSE is dropped here.
            if header.kind is not FrameKind.OPEN or key in self._recently_closed:
                return
            if self._incoming_count >= self._max_incoming:
                _log.debug("refused a link open from %s: incoming links at the bound", sender)
                return
        known = self._peer_instances.get(sender)
        if known != header.instance:
            if header.kind is not FrameKind.OPEN and header.kind is not FrameKind.ACCEPT:
                return  # data or close from a transport instance we never linked with
            if known is not None:
                self._peer_restarted(sender)
            self._peer_instances[sender] = header.instance
            link = self._links.get(key)
        if header.kind is FrameKind.OPEN:
            if link is None:
                link = MqttLink(self, sender, header.link, initiator=False)
                link.peer_instance = header.instance
                self._links[key] = link
                self._incoming_count += 1
                # ACCEPT is started before anyone can accept the link and send on
                # it, so it reaches the peer before any of our data.
                self._answer(link)
                self._watch_peer_soon(sender)
                self._incoming.put_nowait(link)
            elif link is not None and not link.initiator:
                # A redelivered OPEN: answer again, our first ACCEPT may be the lost one.
                self._answer(link)
            return
        if link is None:
            return
        if header.kind is FrameKind.ACCEPT:
            link.accepted(header.instance)
        elif header.instance == link.peer_instance:
            link.arrived(header.kind, header.seq, payload)

    def _answer(self, link: MqttLink) -> None:
        with contextlib.suppress(TransportError):
            self.start_publish(link.topic, pack(FrameKind.ACCEPT, self._instance, link.link_id, 0))

    def _peer_gone(self, peer: Address, instance: bytes) -> None:
        """The broker published `peer`'s will: links to that instance are dead."""
        for key, link in list(self._links.items()):
            if key[0] == peer and link.peer_instance == instance:
                self._unlink(key)
                link.broken(f"{peer.checksum} went away without closing")
        self._forget_if_unlinked(peer)

    def _peer_restarted(self, peer: Address) -> None:
        # Links still waiting for an ACCEPT are bound to no instance yet: the
        # ACCEPT that revealed the restart may be the answer one of them awaits.
        for key, link in list(self._links.items()):
            if key[0] == peer and link.peer_instance is not None:
                self._unlink(key)
                link.broken(f"{peer.checksum} restarted")

    def __repr__(self) -> str:
        return f"MqttTransport({self.endpoint!r})"


def _background_failed(exc: BaseException) -> None:
    _log.debug("MQTT background task failed: %s", exc)
