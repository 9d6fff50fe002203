"""A feed sold between two real nodes on a real chain, read on the node's own Mosquitto
with a real MQTT client: access once the prepayment is durable, exactly until the paid
time ends, renewals without a gap, and refusals before any money moves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

from m2mpay.access.broker import TopicAccess
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.feeds import new_feed
from m2mpay.access.grant import GrantPhase
from m2mpay.access.keeper import GrantKeeper, KeeperConfig
from m2mpay.access.mosquitto import ManagedMosquitto
from m2mpay.access.sealed import Credentials, access_public_key, seal, sealed_context
from m2mpay.access.selling import FeedSeller, SoldFeed
from m2mpay.access.topics import suback_refused
from m2mpay.errors import StreamError
from m2mpay.store import open_store
from m2mpay.stream import SessionPhase
from tests.access.conftest import unique
from tests.stream.conftest import UNIT, Chain, Party, PartyFactory, eventually
from tests.waiting import eventually_async

PRICE_PER_HOUR = 3600 * 10**12  # 10**12 token units a second
TOLERANCE_MS = 250  # a message published this long after the end may still arrive


@dataclass
class Seller:
    party: Party
    keeper: GrantKeeper
    feeds: FeedSeller
    sold: SoldFeed
    device: str


@dataclass
class Reader:
    """A buyer's MQTT client on the live topic, noting what arrives and when."""

    received: list[dict[str, int]] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    refused: bool = False


async def _seller(
    make_party: PartyFactory, broker: DynsecBroker, tmp_path: Path, chain: Chain
) -> Seller:
    party = await make_party(1)
    keeper = GrantKeeper(
        broker, open_store(tmp_path / "grants.sqlite3"), KeeperConfig(meter_every_s=0.2)
    )
    await keeper.start()
    device = unique("plug")
    feeds = FeedSeller(party.sessions, keeper, party.node.key)
    address = broker.address
    feed = new_feed(
        device,
        price_per_hour=PRICE_PER_HOUR,
        asset=chain.token.address,
        access_key=access_public_key(party.node.key),
        broker=f"{address.host}:{address.port}",
        min_seconds=1,
        max_seconds=60,
    )
    return Seller(party, keeper, feeds, feeds.publish(feed), device)


@pytest.fixture
async def broker(managed_mosquitto: ManagedMosquitto) -> AsyncIterator[DynsecBroker]:
    async with DynsecBroker(managed_mosquitto.address) as admin:
        await admin.prepare()
        await admin.set_public(["m2m/+/1m"])
        yield admin


async def _buy(
    buyer: Party, sold: SoldFeed, seconds: int, credentials: Credentials, *, device: str = ""
) -> bytes:
    session_id = secrets.token_bytes(32)
    context = sealed_context(buyer.node.address, device or sold.feed.device_id, session_id)
    terms = seal(sold.feed.access_key, credentials, context)
    await buyer.sessions.start_session(
        sold.offer, target_units=seconds, supply_terms=terms, session_id=session_id
    )
    return session_id


async def _publish(broker: DynsecBroker, device: str, stop: asyncio.Event) -> None:
    """The device: a numbered, timestamped message on its live topic every 50 ms."""
    name = f"m2mpay-{device}"
    password = secrets.token_urlsafe(24)
    await broker.add_client(name, password)
    await broker.allow(name, TopicAccess(f"m2m/{device}/live", read=False, write=True))
    address = broker.address
    async with aiomqtt.Client(address.host, address.port, username=name, password=password) as c:
        n = 0
        while not stop.is_set():
            body = {"n": n, "at_ms": time.time_ns() // 1_000_000}
            await c.publish(f"m2m/{device}/live", json.dumps(body), qos=1)
            n += 1
            await asyncio.sleep(0.05)


async def _read(broker: DynsecBroker, topic: str, credentials: Credentials, reader: Reader) -> None:
    address = broker.address
    async with aiomqtt.Client(
        address.host,
        address.port,
        username=credentials.username,
        password=credentials.password,
        identifier=f"reader-{credentials.username}",
        clean_session=False,
    ) as client:
        result = await client.subscribe(topic, qos=1)
        # A SUBACK's return code of 0x80 or above is a refusal.
        reader.refused = any(suback_refused(code) for code in result or ())
        reader.subscribed.set()
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            body = json.loads(message.payload)
            reader.received.append({**body, "got_ms": time.time_ns() // 1_000_000})


async def test_a_paid_reader_reads_live_data_exactly_while_paid_and_renews_without_a_gap(
    chain: Chain, make_party: PartyFactory, broker: DynsecBroker, tmp_path: Path
) -> None:
    seller = await _seller(make_party, broker, tmp_path, chain)
    buyer = await make_party(2)
    await buyer.node.open_channel(
        seller.party.node.address, chain.token.address, UNIT, endpoint=seller.party.node.endpoint
    )
    stop = asyncio.Event()
    device = asyncio.create_task(_publish(broker, seller.device, stop))
    credentials = Credentials.generate()
    reader = Reader()
    try:
        # Four seconds: on a loaded machine the reader's SUBACK may come seconds after the
        # grant went live, and a grant ended by then refuses it.
        session_id = await _buy(buyer, seller.sold, 4, credentials)
        await eventually(
            lambda: (
                (g := seller.keeper.grant(session_id)) is not None and g.phase is GrantPhase.LIVE
            )
        )
        # Live in the keeper's state is not yet live on the broker: the keeper logs the
        # grant, then allows the read (log, then act), and a log write on a busy disk can
        # take longer than the reader's connect.
        topic = seller.sold.feed.live_topic

        async def readable() -> bool:
            held = (await broker.accesses()).get(credentials.username, frozenset())
            return any(access.topic == topic and access.read for access in held)

        await eventually_async(readable, timeout=10)
        reading = asyncio.create_task(_read(broker, topic, credentials, reader))
        await asyncio.wait(
            [reading, asyncio.ensure_future(reader.subscribed.wait())],
            timeout=5,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if reading.done():
            reading.result()  # it failed: say why
        assert not reader.refused
        # A second before the end, two more seconds: paid ahead, the end moves on.
        grant = seller.keeper.grant(session_id)
        assert grant is not None
        await asyncio.sleep(max(0.0, (grant.paid_until_ms - time.time() * 1000) / 1000 - 1.0))
        buyer.sessions.extend_session(session_id, target_units=6, budget=0)
        sold = await seller.party.sessions.wait_stopped(session_id, timeout=30)
        assert sold.forward.units == 6
        assert sold.forward.paid == 6 * seller.sold.feed.price_per_second
        grant = seller.keeper.grant(session_id)
        assert grant is not None
        assert grant.phase is GrantPhase.ENDED
        await asyncio.sleep(1.0)  # the device goes on publishing after the end
    finally:
        stop.set()
        await device
        with contextlib.suppress(BaseException):
            reading.cancel()
            await reading
    assert len(reader.received) > 40  # 6 s at 20 a second, less what the subscription missed
    # Nothing published after the paid end (plus the tolerance) reached the reader.
    assert max(m["at_ms"] for m in reader.received) <= grant.paid_until_ms + TOLERANCE_MS
    # No gap at the renewal: consecutive numbers from the first message to the last.
    numbers = [m["n"] for m in reader.received]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_bad_terms_are_refused_before_any_payment(
    chain: Chain, make_party: PartyFactory, broker: DynsecBroker, tmp_path: Path
) -> None:
    seller = await _seller(make_party, broker, tmp_path, chain)
    buyer = await make_party(2)
    other = await make_party(3)
    channel = await buyer.node.open_channel(
        seller.party.node.address, chain.token.address, UNIT, endpoint=seller.party.node.endpoint
    )
    await other.node.open_channel(
        seller.party.node.address, chain.token.address, UNIT, endpoint=seller.party.node.endpoint
    )
    credentials = Credentials.generate()
    # Sealed for another feed: the box does not open here.
    with pytest.raises(StreamError, match="supply_refused: "):
        await _buy(buyer, seller.sold, 5, credentials, device="another-device")
    # The node's own names are not for sale.
    with pytest.raises(StreamError, match="the node's own"):
        await _buy(buyer, seller.sold, 5, Credentials("m2mpay-admin2", "x" * 20))
    # Below the shortest purchase the feed sells? It sells from 1 s: buy, then a second
    # buyer asking for the same client name is refused while the first holds it.
    session_id = await _buy(buyer, seller.sold, 5, credentials)
    with pytest.raises(StreamError, match="that client name is taken"):
        await _buy(other, seller.sold, 5, credentials)
    assert (
        buyer.node.channel(channel.channel_id).sent_total == 5 * seller.sold.feed.price_per_second
    )
    sold = await seller.party.sessions.wait_stopped(session_id, timeout=30)
    assert sold.phase is SessionPhase.STOPPED

    async def removed() -> bool:
        return credentials.username not in await broker.clients()

    await eventually_async(removed, timeout=10)  # the end removed the client
