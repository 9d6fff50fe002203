"""Metered sessions between real nodes over a real chain: stop rules, prices, reverse
flow, devices and bad requests, each ending in receipts that match the channel."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.crypto import Address
from m2mpay.devices.simulated import (
    ActuationTimer,
    EnergyMeter,
    MessageCounter,
    Simulation,
    charging_power,
    constant_power,
)
from m2mpay.errors import StreamError
from m2mpay.node import ChannelInfo
from m2mpay.stream import Leader, Offer, ServiceKind, SessionInfo, SessionPhase, new_offer
from m2mpay.stream.context import SessionConfig
from m2mpay.stream.supply import SupplyRequest
from tests.node.conftest import NodeFactory
from tests.stream.conftest import UNIT, Chain, Party, PartyFactory, eventually

PRICE = 10**15  # token units per Wh


async def _pair(
    chain: Chain, make_party: PartyFactory, deposit: int = UNIT, **buyer: object
) -> tuple[Party, Party, ChannelInfo]:
    seller = await make_party(1)
    car = await make_party(2, **buyer)
    channel = await car.node.open_channel(
        seller.node.address, chain.token.address, deposit, endpoint=seller.node.endpoint
    )
    return seller, car, channel


def _energy_offer(seller: Address, asset: Address, **terms: object) -> Offer:
    defaults: dict[str, object] = {"window": 10, "batch": 2}
    defaults.update(terms)
    return new_offer(seller, ServiceKind.ENERGY, "Wh", PRICE, asset, **defaults)  # type: ignore[arg-type]


def _assert_receipt_matches_channel(
    info: SessionInfo, before: ChannelInfo, after: ChannelInfo, *, countersigned: bool = True
) -> None:
    """What the receipt says was paid is what the channel moved during the session."""
    assert info.phase is SessionPhase.STOPPED
    assert info.countersigned is countersigned
    assert info.receipt is not None
    assert info.forward.paid == after.sent_total - before.sent_total
    assert info.backward.paid == after.received_total - before.received_total


async def _settled(party: Party, channel: bytes, total: int) -> ChannelInfo:
    """The channel once our payments up to `total` are acknowledged by the peer."""
    await eventually(lambda: party.node.channel(channel).acked_total >= total)
    return party.node.channel(channel)


async def test_charging_until_the_battery_is_full(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    seller, car, channel = await _pair(chain, make_party)
    offer = seller.sessions.publish(
        _energy_offer(seller.node.address, chain.token.address),
        lambda _: EnergyMeter(simulation, charging_power(22_000, 60_000, 0.9995)),
    )
    # 0.05 % of 60 kWh is 30 Wh: the car wants 30 units, and the curve tapers to them.
    session = await car.sessions.start_session(offer, target_units=30)
    assert session.phase is SessionPhase.ACTIVE
    bought = await car.sessions.wait_stopped(session.session_id, timeout=30)
    sold = await seller.sessions.wait_stopped(session.session_id, timeout=10)
    assert bought.stop_reason == "target reached"
    assert (bought.forward.units, bought.forward.value) == (30, 30 * PRICE)
    assert bought.forward == sold.forward
    after = await _settled(car, channel.channel_id, bought.forward.paid)
    _assert_receipt_matches_channel(bought, channel, after)
    assert bought.forward.paid == 30 * PRICE


async def test_buying_until_the_tokens_run_out(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    seller, car, channel = await _pair(chain, make_party)
    offer = seller.sessions.publish(
        _energy_offer(seller.node.address, chain.token.address, window=4),
        lambda _: EnergyMeter(simulation, constant_power(11_000)),
    )
    session = await car.sessions.start_session(offer, budget=25 * PRICE)
    bought = await car.sessions.wait_stopped(session.session_id, timeout=30)
    sold = await seller.sessions.wait_stopped(session.session_id, timeout=10)
    assert bought.stop_reason == "budget exhausted"
    assert bought.forward.paid == 25 * PRICE
    # The seller knows the budget: it delivers what the budget buys and no more.
    assert sold.forward.units == 25
    assert sold.forward.value == sold.forward.paid
    after = await _settled(car, channel.channel_id, bought.forward.paid)
    _assert_receipt_matches_channel(bought, channel, after)


async def test_the_seller_stops_and_its_last_units_are_paid(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    seller, car, channel = await _pair(chain, make_party)
    offer = seller.sessions.publish(
        _energy_offer(seller.node.address, chain.token.address),
        lambda _: EnergyMeter(simulation, constant_power(7_000)),
    )
    session = await car.sessions.start_session(offer)
    await eventually(lambda: seller.sessions.session(session.session_id).forward.units >= 12)
    sold = await seller.sessions.stop_session(session.session_id, "the wind dropped")
    bought = await car.sessions.wait_stopped(session.session_id)
    assert bought.stop_reason == "the wind dropped"
    assert sold.forward == bought.forward
    assert bought.forward.paid == bought.forward.value  # the final report was paid
    after = await _settled(car, channel.channel_id, bought.forward.paid)
    _assert_receipt_matches_channel(bought, channel, after)


async def test_a_silent_buyer_stops_the_session_within_the_window(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    seller, car, _ = await _pair(chain, make_party)
    offer = seller.sessions.publish(
        _energy_offer(seller.node.address, chain.token.address, window=5),
        lambda _: EnergyMeter(simulation, constant_power(5_000)),
    )
    session = await car.sessions.start_session(offer)
    await eventually(lambda: seller.sessions.session(session.session_id).forward.units >= 8)
    await car.sessions.stop()
    await car.node.stop()  # the car drives off without a word
    sold = await seller.sessions.wait_stopped(session.session_id, timeout=15)
    assert sold.stop_reason == "the peer fell silent"
    assert not sold.countersigned
    assert sold.receipt is not None  # the last consistent view, signed by the seller
    assert sold.forward.value - sold.forward.paid <= 5 * PRICE


async def test_a_price_rise_within_the_buyers_limit_applies_to_later_units(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    seller, car, channel = await _pair(chain, make_party)
    offer = seller.sessions.publish(
        _energy_offer(seller.node.address, chain.token.address),
        lambda _: EnergyMeter(simulation, constant_power(3_000)),
    )
    agreed: list[object] = []
    car.sessions.add_listener(lambda event, _: agreed.append(event))
    session = await car.sessions.start_session(offer, target_units=40, limit_price=2 * PRICE)
    await eventually(lambda: seller.sessions.session(session.session_id).forward.units >= 5)
    seller.sessions.set_price(session.session_id, 2 * PRICE)  # the market moved
    bought = await car.sessions.wait_stopped(session.session_id, timeout=30)
    changes = [e for e in agreed if type(e).__name__ == "PriceAgreed"]
    assert len(changes) == 1
    from_unit = changes[0].from_unit  # type: ignore[attr-defined]
    assert from_unit > 5
    old_units = from_unit - 1
    assert bought.forward.value == old_units * PRICE + (40 - old_units) * 2 * PRICE
    after = await _settled(car, channel.channel_id, bought.forward.paid)
    _assert_receipt_matches_channel(bought, channel, after)


async def test_a_price_above_the_buyers_limit_stops_the_session(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    seller, car, channel = await _pair(chain, make_party)
    offer = seller.sessions.publish(
        _energy_offer(seller.node.address, chain.token.address),
        lambda _: EnergyMeter(simulation, constant_power(3_000)),
    )
    session = await car.sessions.start_session(offer, limit_price=PRICE)
    await eventually(lambda: seller.sessions.session(session.session_id).forward.units >= 5)
    seller.sessions.set_price(session.session_id, 3 * PRICE)
    bought = await car.sessions.wait_stopped(session.session_id, timeout=15)
    assert bought.stop_reason == "price above our limit"
    assert bought.forward.value == bought.forward.units * PRICE  # nothing at the new price
    after = await _settled(car, channel.channel_id, bought.forward.paid)
    _assert_receipt_matches_channel(bought, channel, after)


@pytest.mark.parametrize("device_given", ["to the manager", "with the session"])
async def test_the_car_feeds_the_grid_when_the_session_is_reversed(
    chain: Chain, make_party: PartyFactory, simulation: Simulation, device_given: str
) -> None:
    feeding: list[EnergyMeter] = []

    def car_battery(request: SupplyRequest) -> EnergyMeter:
        assert request.reversed
        feeding.append(EnergyMeter(simulation, constant_power(4_000)))
        return feeding[-1]

    per_session = device_given == "with the session"
    if per_session:
        seller, car, channel = await _pair(chain, make_party)
    else:
        seller, car, channel = await _pair(chain, make_party, feed_back=car_battery)
    # The grid pays the car for energy fed back; the channel needs money on its side.
    await seller.node.top_up(channel.channel_id, UNIT)
    offer = seller.sessions.publish(
        _energy_offer(seller.node.address, chain.token.address, reverse_price=PRICE // 2),
        lambda _: EnergyMeter(simulation, constant_power(6_000)),
    )
    before = car.node.channel(channel.channel_id)
    session = await car.sessions.start_session(
        offer, allow_reverse=True, feed_back=car_battery if per_session else None
    )
    await eventually(lambda: car.sessions.session(session.session_id).forward.units >= 6)
    seller.sessions.reverse(session.session_id, True)  # a grid signal: evening peak
    await eventually(lambda: car.sessions.session(session.session_id).backward.units >= 10)
    assert feeding  # the car's battery became the supply
    bought = await car.sessions.stop_session(session.session_id, "leaving")
    assert bought.reversed
    assert bought.backward.units >= 10
    assert bought.backward.value == bought.backward.units * (PRICE // 2)
    assert bought.backward.paid == bought.backward.value
    await eventually(
        lambda: (
            car.node.channel(channel.channel_id).received_total - before.received_total
            >= bought.backward.paid
        )
    )
    after = await _settled(car, channel.channel_id, car.node.channel(channel.channel_id).sent_total)
    _assert_receipt_matches_channel(bought, before, after)


async def test_a_lamp_lights_for_exactly_the_seconds_paid(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    seller, buyer, channel = await _pair(chain, make_party)
    switched: list[bool] = []
    offer = seller.sessions.publish(
        new_offer(
            seller.node.address,
            ServiceKind.ACTUATION,
            "s",
            PRICE,
            chain.token.address,
            window=5,
            leader=Leader.PAYER,  # paid before it lights
        ),
        lambda _: ActuationTimer(simulation, on_switch=switched.append),
    )
    session = await buyer.sessions.start_session(offer, budget=42 * PRICE)
    bought = await buyer.sessions.wait_stopped(session.session_id, timeout=30)
    sold = await seller.sessions.wait_stopped(session.session_id, timeout=10)
    assert bought.stop_reason == "budget exhausted"
    assert sold.forward.units == 42  # forty-two seconds of light for forty-two paid
    assert sold.forward.paid == sold.forward.value == 42 * PRICE
    assert switched[0] is True
    assert switched[-1] is False
    after = await _settled(buyer, channel.channel_id, bought.forward.paid)
    _assert_receipt_matches_channel(bought, channel, after)


async def test_a_data_feed_passes_only_paid_messages(
    chain: Chain, make_party: PartyFactory
) -> None:
    seller, buyer, channel = await _pair(chain, make_party)
    gates: list[MessageCounter] = []

    def gate(_: SupplyRequest) -> MessageCounter:
        gates.append(MessageCounter())
        return gates[-1]

    offer = seller.sessions.publish(
        new_offer(
            seller.node.address,
            ServiceKind.DATA,
            "message",
            PRICE,
            chain.token.address,
            window=3,
            leader=Leader.PAYER,
        ),
        gate,
    )
    session = await buyer.sessions.start_session(offer, target_units=20)
    passed = 0
    held = 0
    for _ in range(2_000):
        if gates and gates[0].admit():
            passed += 1
        else:
            held += 1
            await asyncio.sleep(0.005)
        if passed == 20:
            break
    assert passed == 20
    assert held > 0  # messages waited for money
    assert not gates[0].admit()  # the target reached, the feed closes
    bought = await buyer.sessions.wait_stopped(session.session_id, timeout=10)
    assert bought.forward.units == 20
    after = await _settled(buyer, channel.channel_id, bought.forward.paid)
    _assert_receipt_matches_channel(bought, channel, after)


async def test_bad_requests_get_clear_errors(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    seller, car, channel = await _pair(chain, make_party, deposit=10 * PRICE)
    offer = _energy_offer(seller.node.address, chain.token.address)
    with pytest.raises(StreamError, match="rejected: unknown_offer"):
        await car.sessions.start_session(offer)  # never published
    with pytest.raises(StreamError, match="invalid_offer"):
        car.sessions.publish(offer, lambda _: EnergyMeter(simulation, constant_power(1)))
    published = seller.sessions.publish(offer, lambda _: EnergyMeter(simulation, constant_power(1)))
    with pytest.raises(StreamError, match="insufficient_balance"):
        await car.sessions.start_session(published, budget=11 * PRICE)
    with pytest.raises(StreamError, match="price_above_limit"):
        await car.sessions.start_session(published, limit_price=PRICE - 1)
    running = await car.sessions.start_session(published)
    with pytest.raises(StreamError, match="no_channel"):
        await car.sessions.start_session(published)  # the only channel is busy
    with pytest.raises(StreamError, match="channel_busy"):
        await car.sessions.start_session(published, channel_id=channel.channel_id)
    with pytest.raises(StreamError, match="unknown_session"):
        await car.sessions.stop_session(b"\x01" * 32)
    with pytest.raises(StreamError, match="invalid_phase"):
        car.sessions.set_price(running.session_id, 2 * PRICE)  # only the seller prices
    with pytest.raises(StreamError, match="reverse_not_agreed"):
        car.sessions.reverse(running.session_id, True)
    await car.sessions.stop_session(running.session_id)


async def test_a_restarted_seller_resumes_its_session_where_it_was(
    chain: Chain, make_party: PartyFactory, simulation: Simulation, make_node: NodeFactory
) -> None:
    patient = SessionConfig(silence_timeout_ms=20_000, receipt_timeout_ms=20_000, resend_ms=300)
    seller = await make_party(1, session=patient)
    car = await make_party(2, session=patient)
    channel = await car.node.open_channel(
        seller.node.address, chain.token.address, UNIT, endpoint=seller.node.endpoint
    )
    offer = _energy_offer(seller.node.address, chain.token.address)
    seller.sessions.publish(offer, lambda _: EnergyMeter(simulation, constant_power(3_000)))
    session = await car.sessions.start_session(offer, target_units=60)
    await eventually(lambda: seller.sessions.session(session.session_id).forward.units >= 15)
    port = int(str(seller.node.endpoint).rsplit(":", 1)[1])
    await seller.sessions.stop()
    await seller.node.stop()

    node = await make_node(1, port=port)
    seller = await make_party(1, session=patient, node=node)
    resumed = seller.sessions.session(session.session_id)
    assert resumed.phase is SessionPhase.ACTIVE
    assert resumed.forward.units >= 15
    # Offers are the application's: published again, the meter switches back on.
    seller.sessions.publish(offer, lambda _: EnergyMeter(simulation, constant_power(3_000)))
    bought = await car.sessions.wait_stopped(session.session_id, timeout=30)
    sold = await seller.sessions.wait_stopped(session.session_id, timeout=10)
    assert bought.stop_reason == "target reached"
    assert bought.forward == sold.forward
    assert bought.forward.units == 60
    after = await _settled(car, channel.channel_id, bought.forward.paid)
    _assert_receipt_matches_channel(bought, channel, after)
