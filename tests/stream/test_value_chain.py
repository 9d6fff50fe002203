"""A wind turbine sells to a charger, the charger resells to a car with a commission:
energy and money reconcile to the unit, and the charger buys only while it sells."""

from __future__ import annotations

from m2mpay.devices.simulated import EnergyMeter, PowerLine, RelayMeter, Simulation, wind_power
from m2mpay.market.resale import Resale
from m2mpay.node import ChannelInfo
from m2mpay.stream import ServiceKind, SessionPhase, new_offer
from m2mpay.stream.context import SessionConfig
from tests.node.conftest import NodeFactory
from tests.stream.conftest import FAST, UNIT, Chain, Party, PartyFactory, eventually

PRICE = 10**15  # the turbine's price per Wh
COMMISSION = 2 * 10**14  # the charger's, per Wh
# Quiet long enough for a reseller to restart without its peers giving up on it.
PATIENT = SessionConfig(silence_timeout_ms=20_000, receipt_timeout_ms=20_000, resend_ms=300)


async def _value_chain(
    chain: Chain,
    make_party: PartyFactory,
    simulation: Simulation,
    session: SessionConfig = FAST,
) -> tuple[Party, Party, Party, Resale, ChannelInfo, ChannelInfo]:
    turbine = await make_party(1, session=session)
    charger = await make_party(2, session=session)
    car = await make_party(3, session=session)
    upstream = await charger.node.open_channel(
        turbine.node.address, chain.token.address, UNIT, endpoint=turbine.node.endpoint
    )
    downstream = await car.node.open_channel(
        charger.node.address, chain.token.address, UNIT, endpoint=charger.node.endpoint
    )
    line = PowerLine()  # the cable from the turbine to the charger
    wind = turbine.sessions.publish(
        new_offer(
            turbine.node.address,
            ServiceKind.ENERGY,
            "Wh",
            PRICE,
            chain.token.address,
            window=8,
            batch=2,
        ),
        lambda _: EnergyMeter(simulation, wind_power(40_000, gust_period_s=20), line=line),
    )
    resale = Resale(charger.sessions, wind, commission=COMMISSION, meter=lambda _: RelayMeter(line))
    resale.publish()
    return turbine, charger, car, resale, upstream, downstream


async def _acknowledged(party: Party, channel: bytes, total: int) -> ChannelInfo:
    await eventually(lambda: party.node.channel(channel).acked_total >= total)
    return party.node.channel(channel)


async def _assert_reconciled(
    turbine: Party,
    charger: Party,
    car: Party,
    resale: Resale,
    sale_id: bytes,
    upstream: ChannelInfo,
    downstream: ChannelInfo,
) -> int:
    purchase_id = resale.purchase_of(sale_id)
    assert purchase_id is not None
    purchase = await charger.sessions.wait_stopped(purchase_id, timeout=30)
    sold = await charger.sessions.wait_stopped(sale_id, timeout=30)
    supplied = await turbine.sessions.wait_stopped(purchase_id, timeout=30)
    bought = await car.sessions.wait_stopped(sale_id, timeout=30)
    assert purchase.countersigned
    assert sold.countersigned
    assert supplied.forward == purchase.forward
    assert bought.forward == sold.forward

    report = resale.reconcile(sale_id)
    assert report.balanced, report.as_dict()
    units = report.units_sold
    assert report.units_bought == units
    assert report.paid_upstream == units * PRICE
    assert report.received_downstream == units * (PRICE + COMMISSION)
    assert report.margin == units * COMMISSION
    # The money moved on the channels is what the report says.
    car_channel = await _acknowledged(car, downstream.channel_id, report.received_downstream)
    charger_channel = await _acknowledged(charger, upstream.channel_id, report.paid_upstream)
    assert car_channel.sent_total - downstream.sent_total == report.received_downstream
    assert charger_channel.sent_total - upstream.sent_total == report.paid_upstream
    return units


async def test_the_charger_resells_wind_power_and_keeps_its_commission(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    turbine, charger, car, resale, upstream, downstream = await _value_chain(
        chain, make_party, simulation
    )
    assert resale.offer is not None
    sale = await car.sessions.start_session(resale.offer, target_units=80)
    bought = await car.sessions.wait_stopped(sale.session_id, timeout=60)
    assert bought.stop_reason == "target reached"
    units = await _assert_reconciled(
        turbine, charger, car, resale, sale.session_id, upstream, downstream
    )
    assert units == 80


async def test_the_charger_stops_buying_when_the_car_stops(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    turbine, charger, car, resale, upstream, downstream = await _value_chain(
        chain, make_party, simulation
    )
    assert resale.offer is not None
    sale = await car.sessions.start_session(resale.offer)
    await eventually(lambda: car.sessions.session(sale.session_id).forward.units >= 23)
    await car.sessions.stop_session(sale.session_id, "the driver unplugged")
    purchase_id = resale.purchase_of(sale.session_id)
    assert purchase_id is not None
    purchase = await charger.sessions.wait_stopped(purchase_id, timeout=30)
    assert purchase.stop_reason == "the sale ended"
    units = await _assert_reconciled(
        turbine, charger, car, resale, sale.session_id, upstream, downstream
    )
    assert units >= 23


async def test_no_supply_upstream_ends_the_sale(
    chain: Chain, make_party: PartyFactory, simulation: Simulation
) -> None:
    turbine, charger, car, resale, upstream, downstream = await _value_chain(
        chain, make_party, simulation
    )
    assert resale.offer is not None
    sale = await car.sessions.start_session(resale.offer)
    await eventually(lambda: car.sessions.session(sale.session_id).forward.units >= 10)
    purchase_id = resale.purchase_of(sale.session_id)
    assert purchase_id is not None
    await turbine.sessions.stop_session(purchase_id, "storm: the turbine feathers")
    bought = await car.sessions.wait_stopped(sale.session_id, timeout=30)
    assert bought.phase is SessionPhase.STOPPED
    sold = await charger.sessions.wait_stopped(sale.session_id, timeout=30)
    assert sold.stop_reason == "no supply upstream"
    await _assert_reconciled(turbine, charger, car, resale, sale.session_id, upstream, downstream)


async def _restarted(charger: Party, make_party: PartyFactory, make_node: NodeFactory) -> Party:
    """The charger's node and sessions stopped at once and started again on their stores
    (the resale object is dropped as a crash would drop it)."""
    port = int(str(charger.node.endpoint).rsplit(":", 1)[1])
    await charger.sessions.stop()
    await charger.node.stop()
    node = await make_node(2, port=port)
    return await make_party(2, session=PATIENT, node=node)


def _purchases(charger: Party, sale_id: bytes) -> list[bytes]:
    return [info.session_id for info in charger.sessions.sessions() if info.supplies == sale_id]


async def test_a_restarted_charger_takes_its_sale_up_with_the_purchase_behind_it(
    chain: Chain, make_party: PartyFactory, simulation: Simulation, make_node: NodeFactory
) -> None:
    turbine, charger, car, resale, _, _ = await _value_chain(chain, make_party, simulation, PATIENT)
    assert resale.offer is not None
    sale = await car.sessions.start_session(resale.offer, target_units=80)
    await eventually(lambda: resale.purchase_of(sale.session_id) is not None)
    purchase_id = resale.purchase_of(sale.session_id)
    await eventually(lambda: car.sessions.session(sale.session_id).forward.units >= 20)

    charger = await _restarted(charger, make_party, make_node)
    assert _purchases(charger, sale.session_id) == [purchase_id]
    again = Resale(
        charger.sessions,
        resale.source,
        commission=resale.commission,
        meter=resale.meter,
    )
    again.publish(offer=resale.offer)
    assert again.purchase_of(sale.session_id) == purchase_id
    assert again.sales() == [sale.session_id]

    bought = await car.sessions.wait_stopped(sale.session_id, timeout=60)
    assert bought.stop_reason == "target reached"
    assert purchase_id is not None
    purchase = await charger.sessions.wait_stopped(purchase_id, timeout=30)
    assert purchase.stop_reason == "the sale ended"
    # One purchase behind the sale, before and after the restart.
    assert _purchases(charger, sale.session_id) == [purchase_id]
    supplied = await turbine.sessions.wait_stopped(purchase_id, timeout=30)
    assert supplied.forward == purchase.forward
    # The charger's meter read on after the restart what came through while it was
    # down: every unit bought was sold, at the commission.
    report = again.reconcile(sale.session_id)
    assert report.balanced, report.as_dict()
    assert report.units_sold == 80


async def test_a_purchase_left_running_by_a_crash_stops_once_the_charger_is_back(
    chain: Chain, make_party: PartyFactory, simulation: Simulation, make_node: NodeFactory
) -> None:
    turbine, charger, car, resale, _, _ = await _value_chain(chain, make_party, simulation, PATIENT)
    assert resale.offer is not None
    sale = await car.sessions.start_session(resale.offer)
    await eventually(lambda: resale.purchase_of(sale.session_id) is not None)
    purchase_id = resale.purchase_of(sale.session_id)
    assert purchase_id is not None
    # The charger dies between its sale ending and stopping the purchase: the relay of
    # stops ends first (close), then the car stops, then the process goes.
    await resale.close()
    await car.sessions.stop_session(sale.session_id, "the driver unplugged")
    await charger.sessions.wait_stopped(sale.session_id, timeout=30)
    assert charger.sessions.session(purchase_id).phase is SessionPhase.ACTIVE

    charger = await _restarted(charger, make_party, make_node)
    again = Resale(
        charger.sessions,
        resale.source,
        commission=resale.commission,
        meter=resale.meter,
    )
    again.publish(offer=resale.offer)
    purchase = await charger.sessions.wait_stopped(purchase_id, timeout=30)
    assert purchase.stop_reason == "the sale ended"
    supplied = await turbine.sessions.wait_stopped(purchase_id, timeout=30)
    assert supplied.forward == purchase.forward
