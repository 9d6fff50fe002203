"""A price change while units are on credit: the window each side holds the other to
must count units permitted, reported or prepaid at the price that was in force then.

Found by CI: a seller permitted a window of units at its old price, the buyer agreed
to half that price, and then refused the report of those units as beyond a window it
now valued at the new price (`report_beyond_window: reported 20…, beyond the 15… paid
plus the window`)."""

from __future__ import annotations

import pytest

from m2mpay.crypto import Address
from m2mpay.stream.inputs import SessionReceived, SetPrice, StopSession
from m2mpay.stream.messages import DeliveryReport, PriceAnswer, SessionMessage
from m2mpay.stream.offer import Leader
from m2mpay.stream.outputs import SessionCode
from m2mpay.stream.state import SessionPhase
from tests.stream.harness import SESSION, SessionNet, make_offer

PRICE = 10
WINDOW = 10


def _net(leader: Leader) -> SessionNet:
    net = SessionNet()
    offer = make_offer(
        net.seller.address, price=PRICE, window=WINDOW, batch=2, leader=leader, reverse_price=0
    )
    net.start(offer, limit_price=3 * PRICE)
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    assert net.buyer.state.phase is net.seller.state.phase is SessionPhase.ACTIVE
    return net


def _answer_held(net: SessionNet) -> list[tuple[Address, SessionMessage]]:
    """Take the buyer's answers out of the seller's queue: they are still on their way."""
    queue = net.queues[net.seller.address]
    held = [item for item in queue if isinstance(item[1], PriceAnswer)]
    for item in held:
        queue.remove(item)
    return held


def _finish(net: SessionNet) -> None:
    net.run()
    net.apply(net.buyer, StopSession(SESSION, "done", net.now))
    net.run()
    assert net.seller.refused == net.buyer.refused == []
    seller, buyer = net.seller.state, net.buyer.state
    assert buyer.stop_reason == seller.stop_reason == "done"
    assert buyer.forward.totals() == seller.forward.totals()
    assert buyer.forward.value > 0
    # Paid in full; a payer that leads has also prepaid at most a window it did not use.
    unused = buyer.forward.paid - buyer.forward.value
    assert unused == 0 if buyer.leader_delivers() else 0 <= unused <= buyer.window_value(False)


@pytest.mark.parametrize("new_price", [PRICE // 2, PRICE * 2], ids=["down", "up"])
def test_units_permitted_at_the_old_price_are_paid_when_the_report_comes_after_the_change(
    new_price: int,
) -> None:
    net = _net(Leader.DELIVERER)
    assert net.meter(net.seller, False, WINDOW) == WINDOW  # the first window, on credit
    net.deliver_messages(net.buyer)  # reported, and paid
    net.settle_payments(net.seller)
    assert net.seller.state.forward.allowed == 2 * WINDOW  # the next window, at the old price
    net.apply(net.seller, SetPrice(SESSION, new_price, net.now))
    net.deliver_messages(net.buyer)  # the buyer agrees at once
    assert (net.buyer.state.price, net.buyer.state.price_from) == (new_price, 2 * WINDOW + 1)
    held = _answer_held(net)
    # The whole window goes out in one reading, before the seller hears the answer.
    assert net.meter(net.seller, False, WINDOW) == WINDOW
    net.deliver_messages(net.buyer)
    assert net.buyer.refused == []
    assert net.buyer.state.phase is SessionPhase.ACTIVE
    assert net.buyer.state.forward.paid == 2 * WINDOW * PRICE  # every unit at the old price
    net.queues[net.seller.address].extend(held)
    _finish(net)
    assert net.seller.state.previous_price == PRICE
    assert net.seller.state.price == new_price


def test_a_payer_that_leads_may_prepay_at_a_higher_price_the_seller_has_not_yet_heard_agreed() -> (
    None
):
    net = _net(Leader.PAYER)
    net.settle_payments(net.seller)  # the first window, prepaid
    assert net.meter(net.seller, False, 4) == 4
    net.apply(net.seller, SetPrice(SESSION, 2 * PRICE, net.now))
    net.deliver_messages(net.buyer)  # the report of 4, and the change: agreed
    held = _answer_held(net)
    assert net.meter(net.seller, False, 2) == 2
    net.deliver_messages(net.buyer)
    # Six delivered and a window ahead, each unit at its own price: 7 to 10 at the old
    # one, 11 (the seller's boundary, one past its permit) to 16 at the new one.
    assert net.seller.state.proposed_from == WINDOW + 1
    assert net.buyer.state.forward.paid == 10 * PRICE + 6 * 2 * PRICE
    net.settle_payments(net.seller)  # the money comes before the answer
    assert net.seller.refused == []
    assert net.seller.state.phase is SessionPhase.ACTIVE
    net.queues[net.seller.address].extend(held)
    _finish(net)


def test_a_report_beyond_the_window_at_the_highest_price_in_play_is_still_refused() -> None:
    net = _net(Leader.DELIVERER)
    assert net.meter(net.seller, False, WINDOW) == WINDOW
    net.deliver_messages(net.buyer)
    net.settle_payments(net.seller)
    net.apply(net.seller, SetPrice(SESSION, PRICE // 2, net.now))
    net.deliver_messages(net.buyer)
    buyer = net.buyer.state
    units = 2 * WINDOW + 1  # one unit more than a window at the old price covers
    value = buyer.forward.value + buyer.value_of(False, buyer.forward.units, units)
    assert value == buyer.forward.paid + WINDOW * PRICE + PRICE // 2
    report = DeliveryReport(SESSION, False, units, value, False)
    net.apply(net.buyer, SessionReceived(net.seller.address, report, net.now))
    assert net.buyer.state.phase is SessionPhase.STOPPING
    assert net.buyer.state.stop_reason.startswith(SessionCode.REPORT_BEYOND_WINDOW.value)


def test_what_an_amount_buys_after_a_unit_is_the_most_units_whose_value_it_covers() -> None:
    net = _net(Leader.DELIVERER)
    for new_price in (PRICE // 2, 3 * PRICE):
        state = net.buyer.state.evolve(previous_price=PRICE, price=new_price, price_from=8)
        for units_from in range(12):
            for amount in range(0, 12 * 3 * PRICE):
                bought = state.units_for(False, units_from, amount)
                assert state.value_of(False, units_from, units_from + bought) <= amount
                assert state.value_of(False, units_from, units_from + bought + 1) > amount
