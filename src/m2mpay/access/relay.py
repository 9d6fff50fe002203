"""A feed sold by the message: the seller's node relays what the device publishes,
counting each message it passes on to a buyer as a unit delivered.

The broker cannot count what it delivers to one subscriber, so a buyer paying per
message does not read the live topic itself. The node's own client (`FeedRelay`, one a
feed, made on the broker with read on the live topic and write under it) subscribes to
the live topic and republishes each message on each per-message session's relay topic
``m2m/<device>/live/<session>`` (`relay_topic`) while that session's gate
(`MessageGate`) admits it. The buyer's client may read its own relay topic, and only
that, for the session's life: a grant through the same `GrantKeeper`, revoked when the
session ends.

Nothing counted may be published before the buyer listens: before the gate opens, the
seller subscribes the buyer's client (its own credentials, client id = its username,
`relay_client_id`) to the relay topic in a persistent session at QoS 1, so the broker
keeps the counted messages until the buyer connects with that client id and no clean
session (`mosquitto_sub -i <username> -c -q 1 -t <relay topic>`). The broker queues at
most its `max_queued_messages` for a client that stays away. When the session ends the
gate closes at once, and the grant ends a moment later (`LINGER_S`), once the broker has
handed the last counted messages over; a buyer still away then loses what it left
queued, as a per-second buyer loses the seconds it was not reading.

The gate is counted before the message is sent (log then act) and never passes the
session's permit, which is what the buyer has paid (the payer goes first). A message
that arrives while nothing paid is left is dropped for that buyer, not queued: the feed
is live data, and what was paid for is the next messages, not old ones. The count is the
session's own, durable with it: after a restart of the seller the gate starts again at
the count the session resumed with, so no message is counted twice and every paid one
is still delivered (from the messages published after the restart). That holds for a
node that stops; one that crashes may lose the message between its count and its send,
and relay again those whose counts the session had not made durable yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Final

import aiomqtt

from m2mpay.access.broker import Broker, TopicAccess
from m2mpay.access.feeds import Feed
from m2mpay.access.keeper import GrantedSupply, GrantKeeper
from m2mpay.access.reading import wait_readable
from m2mpay.access.sealed import Credentials
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError
from m2mpay.lifecycle import raise_if_cancelling
from m2mpay.stream import Leader, Offer, ServiceKind, new_offer
from m2mpay.stream.supply import MeterReport, PermitCount, SupplyRequest

__all__ = [
    "MESSAGE_UNIT",
    "FeedRelay",
    "MessageGate",
    "MessageSupply",
    "message_offer",
    "relay_client_id",
    "relay_topic",
]

log = logging.getLogger("m2mpay.access")

MESSAGE_UNIT: Final = "message"
MESSAGE_WINDOW: Final = 20  # messages paid ahead: a second of a 20 Hz feed
MESSAGE_BATCH: Final = 5  # messages a delivery report (and a payment) covers
MAX_MESSAGES: Final = 1_000_000  # the most one purchase buys
# A per-message grant is not ended by the clock but by its session: its paid time is
# further off than any session lives.
RELAY_GRANT_S: Final = 10 * 365 * 86_400
RETRY_S: Final = 1.0
READY_TIMEOUT_S: Final = 10.0
LINGER_S: Final = 1.0  # the buyer keeps its read this long after its last message


def relay_topic(feed: Feed, session_id: bytes) -> str:
    """The topic a per-message session's buyer reads: its own, under the live topic."""
    return f"{feed.live_topic}/{session_id.hex()[:32]}"


def relay_client_id(credentials: Credentials) -> str:
    """The client id a per-message buyer reads with: its username."""
    return credentials.username


def message_offer(
    feed: Feed,
    seller: Address,
    price_per_message: int,
    *,
    max_messages: int = MAX_MESSAGES,
    valid_for_s: int = 10 * 365 * 86_400,
) -> Offer:
    """The second offer of a feed: messages, paid first with a small window."""
    return new_offer(
        seller,
        ServiceKind.DATA,
        MESSAGE_UNIT,
        price_per_message,
        feed.asset,
        window=MESSAGE_WINDOW,
        batch=MESSAGE_BATCH,
        leader=Leader.PAYER,
        min_units=1,
        max_units=max_messages,
        valid_for_s=valid_for_s,
    )


class MessageGate(PermitCount):
    """One session's count of messages passed on: a message passes only while the
    permit has room, and each one that passes is a unit delivered (reported at once);
    one that does not is dropped for this buyer."""


class FeedRelay:
    """The node's client on one feed's live topic, passing each message on to the
    relay topics whose gates admit it; see the module docstring."""

    def __init__(self, broker: Broker, feed: Feed) -> None:
        self._broker = broker
        self._feed = feed
        digest = hashlib.sha256(feed.device_id.encode()).hexdigest()[:24]
        self.username = f"m2mpay-relay-{digest}"
        self._gates: dict[str, MessageGate] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._ending: dict[asyncio.Task[None], Callable[[], None]] = {}

    async def add(self, topic: str, gate: MessageGate) -> None:
        """Pass messages on to `topic` while `gate` admits them (from the relay's next
        message on: it waits until it is subscribed, or a while)."""
        self._gates[topic] = gate
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"relay {self._feed.device_id}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_TIMEOUT_S):
                await self._ready.wait()

    async def open_for(self, credentials: Credentials, topic: str) -> None:
        """The buyer's persistent subscription to its relay topic, made as the buyer
        once its grant is on the broker (see the module docstring)."""
        host, port = self._address()
        made = await wait_readable(
            host,
            port,
            credentials,
            topic,
            READY_TIMEOUT_S,
            session=relay_client_id(credentials),
        )
        if not made:
            log.warning("could not open the relay topic %s for its buyer", topic)

    def _address(self) -> tuple[str, int]:
        host, _, port = self._feed.broker.rpartition(":")
        return host.strip("[]"), int(port)

    def relays_session(self, session_id: bytes) -> bool:
        """Whether messages are passed on to the session's relay topic (its buyer's
        subscription made)."""
        return relay_topic(self._feed, session_id) in self._gates

    def remove(self, topic: str) -> None:
        self._gates.pop(topic, None)

    def finish(self, topic: str, end: Callable[[], None]) -> None:
        """Relay nothing more to `topic`, and call `end` once the broker has had time to
        hand over what was relayed (or at once if the relay closes first)."""
        self._gates.pop(topic, None)

        async def linger() -> None:
            await asyncio.sleep(LINGER_S)
            self._ending.pop(task, None)
            end()

        task = asyncio.create_task(linger(), name=f"relay end {topic}")
        self._ending[task] = end

    async def close(self) -> None:
        ending, self._ending = self._ending, {}
        for lingering, end in ending.items():
            lingering.cancel()
            end()
        self._gates.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ready.clear()

    async def _client(self) -> str:
        """Make the relay's client afresh (a new password each start: kept nowhere)."""
        password = secrets.token_urlsafe(24)
        await self._broker.remove_client(self.username)
        await self._broker.add_client(self.username, password)
        live = self._feed.live_topic
        await self._broker.allow(self.username, TopicAccess(live, read=True, write=False))
        await self._broker.allow(self.username, TopicAccess(f"{live}/+", read=False, write=True))
        return password

    async def _run(self) -> None:
        host, port = self._address()
        while True:
            try:
                password = await self._client()
                async with aiomqtt.Client(
                    host,
                    port,
                    username=self.username,
                    password=password,
                    identifier=self.username,
                    clean_session=True,
                ) as client:
                    await client.subscribe(self._feed.live_topic, qos=1)
                    self._ready.set()
                    async for message in client.messages:
                        payload = message.payload
                        for topic, gate in list(self._gates.items()):
                            if gate.admit():
                                await client.publish(topic, payload, qos=1)
            except (aiomqtt.MqttError, M2MPayError) as exc:
                raise_if_cancelling()
                self._ready.clear()
                log.warning("the relay of %s lost the broker: %s", self._feed.device_id, exc)
                await asyncio.sleep(RETRY_S)


class MessageSupply(GrantedSupply):
    """The device of one per-message session: a gate on the feed's relay, and a grant
    on the session's relay topic for the session's life."""

    def __init__(
        self,
        keeper: GrantKeeper,
        relay: FeedRelay,
        request: SupplyRequest,
        credentials: Credentials,
        topic: str,
    ) -> None:
        super().__init__(keeper, request, credentials, topic)
        self._relay = relay
        self._gate = MessageGate()

    async def start(self, report: MeterReport, delivered: int) -> None:
        self._gate.open(report, delivered)
        await self._open_grant()
        self._keeper.permit(self.session_id, RELAY_GRANT_S)
        if delivered == 0:
            # Resumed, the buyer's session is there already (and maybe connected: a
            # second connection under its id would take it over).
            await self._relay.open_for(self._credentials, self._topic)
        await self._relay.add(self._topic, self._gate)

    def permit(self, units: int) -> None:
        self._gate.permit(units)

    async def stop(self) -> None:
        self._gate.close()
        session_id, keeper = self.session_id, self._keeper
        self._relay.finish(self._topic, lambda: keeper.end(session_id))

    async def suspend(self) -> None:
        # The grant stays for the session, which resumes after the restart; nothing is
        # relayed meanwhile, so nothing is counted.
        self._gate.close()
        self._relay.remove(self._topic)

    @property
    def delivered(self) -> int:
        return self._gate.delivered
