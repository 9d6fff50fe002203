"""A feed sold by the message between two real nodes, relayed on the node's own
Mosquitto to real MQTT clients (`aiomqtt`, and `mosquitto_sub`): exactly the messages
paid for reach each buyer, on a topic no other buyer reads, and a seller restart
mid-session neither counts a message twice nor loses a paid one."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.feeds import new_feed
from m2mpay.access.keeper import GrantKeeper, KeeperConfig
from m2mpay.access.mosquitto import ManagedMosquitto
from m2mpay.access.reading import wait_readable
from m2mpay.access.relay import MessageGate, relay_client_id, relay_topic
from m2mpay.access.sealed import Credentials, access_public_key
from m2mpay.access.selling import FeedSeller, SoldFeed
from m2mpay.store import open_store
from m2mpay.stream import SessionPhase
from m2mpay.stream.context import SessionConfig
from tests.access.conftest import unique
from tests.access.test_selling import _buy, _publish
from tests.node.conftest import NodeFactory
from tests.stream.conftest import UNIT, Chain, Party, PartyFactory, eventually
from tests.waiting import eventually_async

PRICE_PER_MESSAGE = 7 * 10**12
# Patient sessions: a seller that restarts is not taken for one that fell silent.
PATIENT = SessionConfig(silence_timeout_ms=20_000, receipt_timeout_ms=20_000, resend_ms=300)


def test_a_gate_passes_no_more_than_its_permit_and_resumes_at_the_sessions_count() -> None:
    reports: list[int] = []
    gate = MessageGate()
    assert not gate.admit()  # not started: nothing passes
    gate.open(reports.append, 0)
    gate.permit(3)
    assert [gate.admit() for _ in range(5)] == [True, True, True, False, False]
    assert reports == [1, 2, 3]
    gate.permit(1)  # a stop: the permit falls to what was delivered, never below
    assert gate.permitted == 3
    resumed = MessageGate()  # after a restart: the count goes on from the session's
    resumed.open(reports.append, 3)
    resumed.permit(4)
    assert [resumed.admit(), resumed.admit()] == [True, False]
    assert reports[-1] == 4
    resumed.close()
    resumed.permit(10)
    assert not resumed.admit()


@pytest.fixture
async def broker(managed_mosquitto: ManagedMosquitto) -> AsyncIterator[DynsecBroker]:
    async with DynsecBroker(managed_mosquitto.address) as admin:
        await admin.prepare()
        await admin.set_public(["m2m/+/1m"])
        yield admin


@dataclass
class Seller:
    party: Party
    keeper: GrantKeeper
    feeds: FeedSeller
    sold: SoldFeed  # the per-message offer
    device: str


async def _seller(
    make_party: PartyFactory, broker: DynsecBroker, tmp_path: Path, chain: Chain
) -> Seller:
    party = await make_party(1, session=PATIENT)
    keeper = GrantKeeper(broker, open_store(tmp_path / "grants.sqlite3"), KeeperConfig())
    await keeper.start()
    device = unique("plug")
    feeds = FeedSeller(party.sessions, keeper, party.node.key)
    address = broker.address
    feed = new_feed(
        device,
        price_per_hour=3600,
        asset=chain.token.address,
        access_key=access_public_key(party.node.key),
        broker=f"{address.host}:{address.port}",
        min_seconds=1,
        max_seconds=60,
    )
    feeds.publish(feed)  # by the second, and by the message
    sold = feeds.publish_per_message(feed, PRICE_PER_MESSAGE)
    return Seller(party, keeper, feeds, sold, device)


async def _buyer(make_party: PartyFactory, index: int, seller: Seller, chain: Chain) -> Party:
    buyer = await make_party(index, session=PATIENT)
    await buyer.node.open_channel(
        seller.party.node.address, chain.token.address, UNIT, endpoint=seller.party.node.endpoint
    )
    return buyer


async def _read(
    broker: DynsecBroker, topic: str, credentials: Credentials, into: list[int]
) -> None:
    """A buyer's client in its persistent session on its relay topic."""
    address = broker.address
    async with aiomqtt.Client(
        address.host,
        address.port,
        username=credentials.username,
        password=credentials.password,
        identifier=relay_client_id(credentials),
        clean_session=False,
    ) as client:
        await client.subscribe(topic, qos=1)
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            into.append(json.loads(message.payload)["n"])


async def _readable(broker: DynsecBroker, credentials: Credentials, topic: str) -> bool:
    address = broker.address
    return await wait_readable(address.host, address.port, credentials, topic, 0.5)


async def _stop_task(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def test_a_buyer_of_n_messages_receives_exactly_n_on_its_own_topic(
    chain: Chain, make_party: PartyFactory, broker: DynsecBroker, tmp_path: Path
) -> None:
    seller = await _seller(make_party, broker, tmp_path, chain)
    sold = seller.sold
    assert (sold.offer.unit, sold.offer.price) == ("message", PRICE_PER_MESSAGE)
    first = await _buyer(make_party, 2, seller, chain)
    second = await _buyer(make_party, 3, seller, chain)
    alice, bob = Credentials.generate(), Credentials.generate()
    id_a = await _buy(first, sold, 12, alice)
    id_b = await _buy(second, sold, 7, bob)
    topic_a, topic_b = relay_topic(sold.feed, id_a), relay_topic(sold.feed, id_b)
    await eventually(lambda: seller.feeds.relaying(id_a) and seller.feeds.relaying(id_b))
    # Each buyer reads its own relay topic, neither the other's nor the paid live topic
    # (the device has not published yet: both sessions are running).
    assert await _readable(broker, alice, topic_a)
    assert await _readable(broker, bob, topic_b)
    assert not await _readable(broker, alice, topic_b)
    assert not await _readable(broker, bob, topic_a)
    assert not await _readable(broker, alice, sold.feed.live_topic)
    assert not await _readable(broker, alice, f"{sold.feed.live_topic}/+")
    got_alice: list[int] = []
    reading = asyncio.create_task(_read(broker, topic_a, alice, got_alice))
    address = broker.address
    sub = await asyncio.create_subprocess_exec(
        *("mosquitto_sub", "-h", address.host, "-p", str(address.port)),
        *("-u", bob.username, "-P", bob.password, "-i", relay_client_id(bob)),
        *("-c", "-q", "1", "-t", topic_b),
        stdout=asyncio.subprocess.PIPE,
    )
    stop = asyncio.Event()
    device = asyncio.create_task(_publish(broker, seller.device, stop))
    try:
        for session_id, buyer in ((id_a, first), (id_b, second)):
            await buyer.sessions.wait_stopped(session_id, timeout=30)
        sold_a = await seller.party.sessions.wait_stopped(id_a, timeout=10)
        sold_b = await seller.party.sessions.wait_stopped(id_b, timeout=10)
        await eventually(lambda: len(got_alice) >= 12)
        await asyncio.sleep(0.5)  # the device goes on publishing after the paid count
    finally:
        stop.set()
        await device
        await _stop_task(reading)
        with contextlib.suppress(ProcessLookupError):
            sub.terminate()
    assert sub.stdout is not None
    lines = (await sub.stdout.read()).decode().splitlines()
    await sub.wait()
    # Exactly what was paid: consecutive messages of the device, no more.
    assert len(got_alice) == 12
    assert got_alice == list(range(got_alice[0], got_alice[0] + 12))
    numbers = [json.loads(line)["n"] for line in lines]
    assert len(numbers) == 7
    assert numbers == list(range(numbers[0], numbers[0] + 7))
    # The receipts count the messages delivered and paid.
    for info, count in ((sold_a, 12), (sold_b, 7)):
        assert info.phase is SessionPhase.STOPPED
        assert info.receipt is not None
        assert info.receipt.forward.units == count
        assert info.forward.paid == count * PRICE_PER_MESSAGE

    # The session's end took the buyer's client away.
    async def removed() -> bool:
        return not {alice.username, bob.username} & await broker.clients()

    await eventually_async(removed, timeout=10)
    await seller.feeds.close()


async def test_a_seller_restart_mid_session_neither_over_delivers_nor_loses_paid_messages(
    chain: Chain,
    make_party: PartyFactory,
    make_node: NodeFactory,
    broker: DynsecBroker,
    tmp_path: Path,
) -> None:
    seller = await _seller(make_party, broker, tmp_path, chain)
    sold = seller.sold
    buyer = await _buyer(make_party, 2, seller, chain)
    credentials = Credentials.generate()
    wanted = 60  # three seconds of the device's messages
    session_id = await _buy(buyer, sold, wanted, credentials)
    topic = relay_topic(sold.feed, session_id)
    await eventually(lambda: seller.feeds.relaying(session_id))
    got: list[int] = []
    reading = asyncio.create_task(_read(broker, topic, credentials, got))
    stop = asyncio.Event()
    device = asyncio.create_task(_publish(broker, seller.device, stop))
    try:
        await eventually(lambda: seller.party.sessions.session(session_id).forward.units >= 10)
        # The seller's node stops (its relay with it) and comes back on the same stores.
        port = int(str(seller.party.node.endpoint).rsplit(":", 1)[1])
        await seller.feeds.close()
        await seller.party.sessions.stop()
        await seller.party.node.stop()
        await seller.keeper.stop()
        await asyncio.sleep(0.5)  # the device publishes on: nobody relays, nobody counts
        keeper = GrantKeeper(broker, open_store(tmp_path / "grants.sqlite3"), KeeperConfig())
        await keeper.start()
        node = await make_node(1, port=port)
        party = await make_party(1, node=node, session=PATIENT)
        resumed = party.sessions.session(session_id)
        assert resumed.phase is SessionPhase.ACTIVE
        assert 10 <= resumed.forward.units < wanted
        feeds = FeedSeller(party.sessions, keeper, party.node.key)
        feeds.publish(sold.feed, sold.offer)  # the per-message offer again: relaying resumes
        await buyer.sessions.wait_stopped(session_id, timeout=30)
        info = await party.sessions.wait_stopped(session_id, timeout=10)
        await eventually(lambda: len(got) >= wanted)
        await asyncio.sleep(0.5)  # the device goes on publishing after the paid count
        await feeds.close()
        await keeper.stop()
    finally:
        stop.set()
        await device
        await _stop_task(reading)
    assert info.receipt is not None
    assert info.receipt.forward.units == wanted
    assert info.forward.paid == wanted * PRICE_PER_MESSAGE
    # Every paid message arrived, once, none beyond: the count is the session's. The
    # messages published while the seller was down were not relayed (a gap), not owed.
    assert len(got) == wanted
    assert len(set(got)) == wanted
    assert got == sorted(got)
