"""A session cut off for longer than its silence and receipt timeouts: each side ends it
on its own signed view. When the peer is back, the two views are reconciled into one
receipt both sign, within what each side can check; a view it cannot check is refused.
"""

from __future__ import annotations

from dataclasses import replace

from m2mpay.devices.simulated import EnergyMeter, Simulation, constant_power
from m2mpay.stream import ServiceKind, new_offer
from m2mpay.stream.context import SessionConfig
from m2mpay.stream.inputs import SessionReceived, SessionTick, SetPrice
from m2mpay.stream.messages import SignedReceipt
from m2mpay.stream.outputs import SessionCode, SessionStopped
from m2mpay.stream.state import SessionPhase
from tests.node.conftest import NodeFactory
from tests.stream.conftest import UNIT, Chain, PartyFactory, eventually
from tests.stream.harness import SESSION, Party, SessionNet, make_offer

SILENCE_AND_RECEIPT_MS = 2 * 5_001


def _cut_off(net: SessionNet, seller_meters: int) -> None:
    """The link dies: what is sent is lost, the seller meters on within its permit, and
    both sides time out, stop and give up waiting for the other's receipt."""
    for _ in range(seller_meters):
        net.meter(net.seller, False, 1)
    for _ in range(2):
        net.queues.clear()
        net.payments.clear()
        net.tick(SILENCE_AND_RECEIPT_MS // 2)
    net.queues.clear()
    net.payments.clear()


def _stopped_events(party: Party) -> list[SessionStopped]:
    return [e for e in party.events if isinstance(e, SessionStopped)]


def _back(net: SessionNet) -> None:
    """Both nodes see each other again: the ticks say so, then messages flow."""
    net.now += 1_000
    for party in (net.seller, net.buyer):
        net.apply(party, SessionTick(SESSION, net.now, net.now))
    net.run()


def test_views_that_drifted_apart_end_in_one_countersigned_receipt() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, window=20, batch=5))
    net.run(rounds=12)
    _cut_off(net, seller_meters=7)  # metered, reported, never heard of by the buyer
    seller, buyer = net.seller.state, net.buyer.state
    assert seller.phase is buyer.phase is SessionPhase.STOPPED
    assert seller.forward.units > buyer.forward.units  # 5 units against 25, as reported
    assert [e.countersigned for e in _stopped_events(net.seller)] == [False]

    _back(net)

    seller, buyer = net.seller.state, net.buyer.state
    assert seller.my_receipt is not None
    assert buyer.my_receipt is not None
    view = (seller.my_receipt.forward, seller.my_receipt.backward, seller.my_receipt.stopped_ms)
    assert view == (
        buyer.my_receipt.forward,
        buyer.my_receipt.backward,
        buyer.my_receipt.stopped_ms,
    )
    assert seller.peer_receipt == buyer.my_receipt
    assert buyer.peer_receipt == seller.my_receipt
    assert buyer.my_receipt.forward.units == seller.forward.units  # the seller's units count
    for party in (net.seller, net.buyer):
        assert [e.countersigned for e in _stopped_events(party)] == [False, True]
    # Unpaid credit stays within the window, as the receipt both signed says.
    forward = buyer.my_receipt.forward
    assert forward.value - forward.paid <= net.offer.window * net.offer.price


def test_a_view_beyond_the_window_is_refused_and_changes_nothing() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, window=20, batch=5))
    net.run(rounds=12)
    _cut_off(net, seller_meters=3)
    buyer_before = net.buyer.state
    mine = net.seller.state.my_receipt
    assert mine is not None
    inflated = replace(mine.forward, units=mine.forward.units + 100)
    inflated = replace(inflated, value=inflated.units * net.offer.price)
    claim = net.seller.key.sign_digest(b"\x00" * 32)  # any signature: refused first anyway
    forged = SignedReceipt(
        mine.session_id,
        mine.channel_id,
        inflated,
        mine.backward,
        mine.started_ms,
        mine.stopped_ms,
        claim,
    )
    net.apply(net.buyer, SessionReceived(net.seller.address, forged, net.now))
    assert net.buyer.state is buyer_before
    assert [r.code for r in net.buyer.refused][-1] in (
        SessionCode.BAD_SIGNATURE,
        SessionCode.RECEIPT_MISMATCH,
    )


def test_units_permitted_before_a_price_drop_are_adopted_at_the_old_price() -> None:
    """The seller permits a window at its old price, the buyer agrees to half of it, and
    the link dies with the answer: those units are within the window at the old price."""
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=10, window=10, batch=10))
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    assert net.meter(net.seller, False, 10) == 10
    net.deliver_messages(net.buyer)
    net.settle_payments(net.seller)
    net.apply(net.seller, SetPrice(SESSION, 5, net.now))
    net.deliver_messages(net.buyer)
    assert (net.buyer.state.price, net.buyer.state.forward.paid) == (5, 100)
    _cut_off(net, seller_meters=10)  # the answer and the report of 20 units are lost
    assert (net.seller.state.forward.units, net.buyer.state.forward.units) == (20, 10)

    _back(net)

    assert net.buyer.refused == []
    seller, buyer = net.seller.state, net.buyer.state
    assert seller.my_receipt is not None
    assert buyer.my_receipt is not None
    assert buyer.my_receipt.forward == seller.my_receipt.forward
    assert (buyer.forward.units, buyer.forward.value) == (20, 200)
    assert [e.countersigned for e in _stopped_events(net.buyer)] == [False, True]


def test_a_peer_that_never_returns_leaves_our_own_receipt() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    net.run(rounds=12)
    _cut_off(net, seller_meters=2)
    for _ in range(5):
        net.tick(60_000)  # time passes, the peer is not seen: nothing is sent to nobody
    assert net.seller.state.peer_receipt is None
    assert [e.countersigned for e in _stopped_events(net.seller)] == [False]


async def test_real_nodes_cut_off_past_every_timeout_end_countersigned_once_back(
    chain: Chain, make_party: PartyFactory, simulation: Simulation, make_node: NodeFactory
) -> None:
    quick = SessionConfig(silence_timeout_ms=1_500, receipt_timeout_ms=1_500, resend_ms=300)
    seller = await make_party(1, session=quick)
    car = await make_party(2, session=quick)
    channel = await car.node.open_channel(
        seller.node.address, chain.token.address, UNIT, endpoint=seller.node.endpoint
    )
    offer = new_offer(
        seller.node.address, ServiceKind.ENERGY, "Wh", 10**15, chain.token.address, window=10
    )
    seller.sessions.publish(offer, lambda _: EnergyMeter(simulation, constant_power(5_000)))
    session = await car.sessions.start_session(offer)
    await eventually(lambda: seller.sessions.session(session.session_id).forward.units >= 8)
    await car.sessions.stop()
    await car.node.stop()  # the car's node is down far longer than any timeout
    sold = await seller.sessions.wait_stopped(session.session_id, timeout=15)
    assert not sold.countersigned

    node = await make_node(2)
    car = await make_party(2, session=quick, node=node)  # back, with its store
    await car.node.connect(str(seller.node.endpoint), seller.node.address)

    def agreed() -> bool:
        bought = car.sessions.session(session.session_id)
        sold = seller.sessions.session(session.session_id)
        return bought.countersigned and sold.countersigned

    await eventually(agreed, timeout=20)
    bought = car.sessions.session(session.session_id)
    sold = seller.sessions.session(session.session_id)
    assert bought.receipt == sold.peer_receipt
    assert sold.receipt == bought.peer_receipt
    assert (bought.forward, bought.backward) == (sold.forward, sold.backward)
    assert bought.forward.units >= 8
    # What the receipt says was paid is what the channel moved.
    after = car.node.channel(channel.channel_id)
    assert bought.forward.paid == after.sent_total - channel.sent_total
    assert bought.forward.value - bought.forward.paid <= 10 * 10**15
