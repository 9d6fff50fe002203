"""Two real nodes on a real EVM: the honest case, a cheating close, a silent peer, restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import TypeVar

import pytest

from m2mpay.chain import OnchainChannel
from m2mpay.channel.context import ProtocolConfig
from m2mpay.channel.outputs import ChannelDefended, ChannelEvent, PaymentReceived
from m2mpay.channel.state import Phase
from m2mpay.errors import ChannelError
from m2mpay.node import NodeConfig, PaymentWait
from m2mpay.wire import MqttTransport
from tests.conftest import Broker
from tests.node.conftest import UNIT, Chain, NodeFactory

E = TypeVar("E", bound=ChannelEvent)


async def test_ten_thousand_payments_both_ways_then_cooperative_close(
    chain: Chain, make_node: NodeFactory
) -> None:
    alice, bob = await make_node(1), await make_node(2)
    alice_before = await chain.token.balance_of(alice.address)
    bob_before = await chain.token.balance_of(bob.address)
    info = await alice.open_channel(
        bob.address, chain.token.address, 100 * UNIT, peer_deposit=50 * UNIT, endpoint=bob.endpoint
    )
    assert (info.phase, info.deposit_mine, info.deposit_peer) == (Phase.OPEN, 100 * UNIT, 50 * UNIT)
    channel = info.channel_id
    last_a = last_b = None
    for i in range(5_000):
        last_a = await alice.pay(channel, 3 + i % 7, wait=PaymentWait.QUEUED)
        last_b = await bob.pay(channel, 2 + i % 5, wait=PaymentWait.QUEUED)
    assert last_a is not None
    assert last_b is not None
    await asyncio.wait_for(asyncio.gather(last_a.acknowledged, last_b.acknowledged), 60)
    paid_by_alice = sum(3 + i % 7 for i in range(5_000))
    paid_by_bob = sum(2 + i % 5 for i in range(5_000))
    assert alice.channel(channel).sent_total == paid_by_alice
    assert bob.channel(channel).received_total == paid_by_alice
    assert alice.channel(channel).received_total == paid_by_bob

    closed = await alice.close(channel)
    assert closed.phase is Phase.CLOSED
    await bob.wait_closed(channel)
    net = paid_by_alice - paid_by_bob
    assert await chain.token.balance_of(alice.address) == alice_before - net
    assert await chain.token.balance_of(bob.address) == bob_before + net
    assert await chain.token.balance_of(chain.hub.address) == 0


async def test_payments_in_native_eth(chain: Chain, make_node: NodeFactory) -> None:
    from m2mpay.chain import NATIVE_TOKEN

    alice, bob = await make_node(1), await make_node(2)
    info = await alice.open_channel(bob.address, NATIVE_TOKEN, UNIT, endpoint=bob.endpoint)
    await alice.pay(info.channel_id, UNIT // 4)
    bob_before = await chain.ledger.balance(bob.address)
    await bob.close(info.channel_id)
    await alice.wait_closed(info.channel_id)
    # bob sent the close transaction, so it paid gas out of what it received
    gained = await chain.ledger.balance(bob.address) - bob_before
    assert UNIT // 4 - 10**16 < gained <= UNIT // 4


async def test_a_stale_close_is_defended_and_the_payee_gets_its_money(
    chain: Chain, make_node: NodeFactory
) -> None:
    """The EV case: the car pays the charger, then closes claiming it paid almost nothing."""
    car, charger = await make_node(1), await make_node(2)
    info = await car.open_channel(
        charger.address,
        chain.token.address,
        10 * UNIT,
        challenge_period=30,
        endpoint=charger.endpoint,
    )
    channel = info.channel_id
    for _ in range(6):
        await car.pay(channel, UNIT)
    charger_before = await chain.token.balance_of(charger.address)
    state = car._channels[channel]
    await car.stop()  # the car goes rogue and uses the hub directly with an old total
    onchain = OnchainChannel(
        state.terms.a,
        state.terms.b,
        state.terms.asset,
        state.terms.challenge_period,
        state.terms.nonce,
        state.deposit_a,
        state.deposit_b,
    )
    await chain.hub.close(chain.keys[1], onchain, UNIT, 0, None)
    events = charger.events()
    defended = await asyncio.wait_for(_first(events, ChannelDefended), 10)
    assert defended.transferred == 6 * UNIT
    await chain.ledger.advance_time(31 + charger.config.protocol.settle_grace_s)
    closed = await charger.wait_closed(channel, timeout=30)
    assert closed.phase is Phase.SETTLED
    assert await chain.token.balance_of(charger.address) == charger_before + 6 * UNIT


async def _first(events: AsyncIterator[ChannelEvent], kind: type[E]) -> E:
    async for event in events:
        if isinstance(event, kind):
            return event
    raise AssertionError("events ended")


async def test_silent_peer_gets_a_unilateral_close_after_the_timeout(
    chain: Chain, make_node: NodeFactory
) -> None:
    quick = NodeConfig(tick_interval_s=0.05, protocol=ProtocolConfig(close_timeout_ms=500))
    alice, bob = await make_node(1), await make_node(2, config=quick)
    info = await alice.open_channel(
        bob.address, chain.token.address, 10 * UNIT, challenge_period=20, endpoint=bob.endpoint
    )
    await alice.pay(info.channel_id, 4 * UNIT)
    await alice.stop()  # alice is gone
    bob_before = await chain.token.balance_of(bob.address)
    disputed = await bob.close(info.channel_id, timeout=20)
    assert disputed.phase is Phase.DISPUTED
    await chain.ledger.advance_time(21 + bob.config.protocol.settle_grace_s)
    settled = await bob.wait_closed(info.channel_id, timeout=30)
    assert settled.final_balance_mine == 4 * UNIT
    assert await chain.token.balance_of(bob.address) == bob_before + 4 * UNIT


async def test_a_restarted_node_resumes_its_channels(chain: Chain, make_node: NodeFactory) -> None:
    alice, bob = await make_node(1), await make_node(2, store_name="bob")
    info = await alice.open_channel(
        bob.address, chain.token.address, 10 * UNIT, endpoint=bob.endpoint
    )
    for _ in range(50):
        await alice.pay(info.channel_id, 7, wait=PaymentWait.QUEUED)
    await (await alice.pay(info.channel_id, 7)).acknowledged
    port = int(str(bob.endpoint).rsplit(":", 1)[1])
    await bob.stop()
    bob = await make_node(2, store_name="bob", port=port)
    assert bob.channel(info.channel_id).received_total == 51 * 7
    # alice dialled bob, so alice reconnects; payments go on from where they were.
    handle = await alice.pay(info.channel_id, 1, timeout=30)
    assert handle.total == 51 * 7 + 1
    assert bob.channel(info.channel_id).received_total == 51 * 7 + 1


async def test_local_requests_fail_with_clear_errors(chain: Chain, make_node: NodeFactory) -> None:
    alice, bob = await make_node(1), await make_node(2)
    info = await alice.open_channel(bob.address, chain.token.address, 10, endpoint=bob.endpoint)
    with pytest.raises(ChannelError, match="insufficient_balance"):
        await alice.pay(info.channel_id, 11)
    with pytest.raises(ChannelError, match="non_positive_amount"):
        await alice.pay(info.channel_id, 0)
    with pytest.raises(ChannelError, match="unknown_channel"):
        await alice.pay(b"\x01" * 32, 1)
    with pytest.raises(ChannelError, match="insufficient_balance"):
        await bob.pay(info.channel_id, 1)  # bob deposited nothing and received nothing yet
    assert alice.channel(info.channel_id).sent_total == 0


async def test_events_report_payments(chain: Chain, make_node: NodeFactory) -> None:
    alice, bob = await make_node(1), await make_node(2)
    info = await alice.open_channel(bob.address, chain.token.address, 100, endpoint=bob.endpoint)
    events = bob.events()
    received = asyncio.ensure_future(_first(events, PaymentReceived))
    await asyncio.sleep(0)
    await alice.pay(info.channel_id, 42)
    event = await asyncio.wait_for(received, 5)
    assert isinstance(event, PaymentReceived)
    assert (event.amount, event.total, event.seq) == (42, 42, 1)


async def test_top_up_adds_to_the_deposit(chain: Chain, make_node: NodeFactory) -> None:
    alice, bob = await make_node(1), await make_node(2)
    info = await alice.open_channel(bob.address, chain.token.address, 10, endpoint=bob.endpoint)
    topped = await alice.top_up(info.channel_id, 15)
    assert topped.deposit_mine == 25
    await alice.pay(info.channel_id, 20)
    assert bob.channel(info.channel_id).deposit_peer == 25


async def test_nodes_talk_over_mqtt_as_well(
    chain: Chain, make_node: NodeFactory, mosquitto: Broker
) -> None:
    """The same node over a real Mosquitto, one topic per peer, CBOR on one side and JSON on
    the other."""
    a_key, b_key = chain.keys[1], chain.keys[2]
    alice = await make_node(
        1,
        transport=MqttTransport(mosquitto.host, mosquitto.port, a_key.address),
        config=NodeConfig(tick_interval_s=0.05, codec="cbor"),
    )
    bob = await make_node(
        2,
        transport=MqttTransport(mosquitto.host, mosquitto.port, b_key.address),
        config=NodeConfig(tick_interval_s=0.05, codec="json"),
    )
    assert str(bob.endpoint).startswith("mqtt://")
    info = await alice.open_channel(bob.address, chain.token.address, 1_000, endpoint=bob.endpoint)
    last_a = last_b = None
    for _ in range(200):
        last_a = await alice.pay(info.channel_id, 3, wait=PaymentWait.QUEUED)
    assert last_a is not None
    await asyncio.wait_for(last_a.acknowledged, 20)
    for _ in range(199):
        last_b = await bob.pay(info.channel_id, 1, wait=PaymentWait.QUEUED)
    assert last_b is not None
    await asyncio.wait_for(last_b.acknowledged, 20)
    closed = await bob.close(info.channel_id)
    assert closed.phase is Phase.CLOSED
    assert closed.final_balance_mine == 600 - 199


async def test_a_node_on_postgresql_resumes_after_restart(
    chain: Chain, make_node: NodeFactory, postgres_url: str
) -> None:
    namespace = f"node-{uuid.uuid4().hex[:12]}"
    alice = await make_node(1, store_location=postgres_url, store_name=namespace)
    bob = await make_node(2)
    info = await alice.open_channel(bob.address, chain.token.address, 10_000, endpoint=bob.endpoint)
    for _ in range(300):
        last = await alice.pay(info.channel_id, 5, wait=PaymentWait.QUEUED)
    await asyncio.wait_for(last.acknowledged, 20)
    await alice.stop()
    alice = await make_node(1, store_location=postgres_url, store_name=namespace)
    assert alice.channel(info.channel_id).sent_total == 1_500
    assert alice.channel(info.channel_id).acked_total == 1_500
    closed = await alice.close(info.channel_id)
    assert closed.final_balance_mine == 8_500


async def test_pay_returns_as_far_as_its_wait_says(chain: Chain, make_node: NodeFactory) -> None:
    alice, bob = await make_node(1), await make_node(2, store_name="bob")
    info = await alice.open_channel(
        bob.address, chain.token.address, 10 * UNIT, endpoint=bob.endpoint
    )
    queued = await alice.pay(info.channel_id, 1, wait=PaymentWait.QUEUED)
    assert queued.total == 1  # signed and counted, whatever its log and the payee did since
    store = alice._engine.store
    before = store.durable_seq + store.pending_count  # the last record appended
    durable = await alice.pay(info.channel_id, 2, wait=PaymentWait.DURABLE)
    # Returned only once our log holds it: its record (after `before`) is on disk.
    assert store.durable_seq > before
    assert durable.total == 3
    acknowledged = await alice.pay(info.channel_id, 3)  # the default
    assert acknowledged.acknowledged.done()
    assert bob.channel(info.channel_id).received_total == 6
