"""Supply terms and extensions of a running session: the seller's device sees what the
buyer told it and may refuse it before any money moves; a buyer raises its target or
budget without a gap, and bounds never go down."""

from __future__ import annotations

from dataclasses import replace

import pytest

from m2mpay.errors import MalformedMessage
from m2mpay.plain import from_plain, to_plain
from m2mpay.stream.inputs import ExtendSession, RequestReceived, StartSession
from m2mpay.stream.messages import SessionExtend, SessionRejected, SessionRequest
from m2mpay.stream.offer import Leader
from m2mpay.stream.outputs import SessionCode
from m2mpay.stream.state import SessionPhase
from tests.stream.harness import CHANNEL, SESSION, TOKEN, SessionNet, make_offer


def _prepaid(net: SessionNet, *, target: int, window: int = 10, budget: int = 0) -> None:
    net.start(
        make_offer(net.seller.address, leader=Leader.PAYER, window=window, batch=1),
        target=target,
        budget=budget,
    )
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    net.settle_payments(net.seller)


def test_an_extension_before_the_end_pays_ahead_and_the_permit_never_stops() -> None:
    net = SessionNet()
    _prepaid(net, target=10)
    assert net.buyer.sent_total == 100  # ten units at 10 prepaid
    assert net.seller.allowed[False] == 10
    net.meter(net.seller, False, 6)
    net.deliver_messages(net.buyer)
    net.apply(net.buyer, ExtendSession(SESSION, 25, 0, net.now))
    assert net.buyer.state.target_units == 25
    # The buyer stays one window ahead of the 6 reported: 16 units paid at once.
    assert net.buyer.sent_total == 160
    net.deliver_messages(net.seller)
    assert net.seller.state.target_units == 25
    net.settle_payments(net.seller)
    assert net.seller.allowed[False] == 16
    # The device never had to stop: it was permitted past the old target before reaching it.
    assert net.seller.metered[False] == 6
    net.run()
    assert net.seller.state.forward.units == 25
    assert net.buyer.sent_total == 250
    assert net.seller.state.phase is not SessionPhase.ACTIVE
    assert net.seller.state.stop_reason == "target reached"


def test_a_budget_extension_buys_more_units() -> None:
    net = SessionNet()
    _prepaid(net, target=0, window=4, budget=50)  # five units at 10
    net.meter(net.seller, False, 2)
    net.deliver_messages(net.buyer)
    net.apply(net.buyer, ExtendSession(SESSION, 0, 90, net.now))
    net.deliver_messages(net.seller)
    net.run()
    assert net.seller.state.forward.units == 9
    assert net.buyer.sent_total == 90
    assert net.buyer.state.stop_reason == "budget exhausted"


@pytest.mark.parametrize(
    ("target", "budget", "why"),
    [
        (5, 0, "the target may only grow (it is 10)"),
        (0, 50, "the budget may only grow (it is 0)"),  # a budget where there was none
    ],
)
def test_bounds_never_go_down(target: int, budget: int, why: str) -> None:
    net = SessionNet()
    _prepaid(net, target=10)
    net.apply(net.buyer, ExtendSession(SESSION, target, budget, net.now))
    assert net.buyer.refused[-1].code is SessionCode.INVALID_EXTENSION
    assert net.buyer.refused[-1].message == why
    assert (net.buyer.state.target_units, net.buyer.state.budget) == (10, 0)
    assert net.buyer.sent_total == 100
    assert not net.queues[net.seller.address]  # nothing told to the seller


def test_a_seller_refuses_a_lower_target_from_its_peer_and_keeps_its_own() -> None:
    net = SessionNet()
    _prepaid(net, target=10)
    net.queues[net.seller.address].append((net.buyer.address, SessionExtend(SESSION, 3, 0)))
    net.deliver_messages(net.seller)
    assert net.seller.state.target_units == 10
    refused = [r for r in net.seller.refused if r.code is SessionCode.INVALID_EXTENSION]
    assert refused


def test_only_the_buyer_extends_and_only_while_the_session_runs() -> None:
    net = SessionNet()
    _prepaid(net, target=4)
    net.apply(net.seller, ExtendSession(SESSION, 40, 0, net.now))
    assert net.seller.refused[-1].code is SessionCode.INVALID_EXTENSION
    assert net.seller.state.target_units == 4
    net.run()
    assert net.buyer.state.phase is not SessionPhase.ACTIVE
    net.apply(net.buyer, ExtendSession(SESSION, 40, 0, net.now))
    assert net.buyer.refused[-1].code is SessionCode.INVALID_EXTENSION
    assert "not running" in net.buyer.refused[-1].message


def test_supply_terms_reach_the_seller_with_the_request() -> None:
    net = SessionNet()
    offer = make_offer(net.seller.address, leader=Leader.PAYER)
    net.apply(
        net.buyer,
        StartSession(SESSION, offer, CHANNEL, 10**6, 0, 5, False, 0, 0, net.now, None, b"sealed"),
    )
    net.offer = offer
    _, request = net.queues[net.seller.address][0]
    assert isinstance(request, SessionRequest)
    assert request.supply_terms == b"sealed"
    net.deliver_messages(net.seller)
    assert net.seller.state.supply_terms == b"sealed"
    assert net.buyer.state.supply_terms == b"sealed"


def test_a_device_that_refuses_the_terms_rejects_the_session_before_any_payment() -> None:
    net = SessionNet()
    offer = make_offer(net.seller.address, leader=Leader.PAYER)
    net.offer = offer
    net.apply(
        net.buyer,
        StartSession(SESSION, offer, CHANNEL, 10**6, 0, 5, False, 0, 0, net.now, None, b"x"),
    )
    _, request = net.queues[net.seller.address].popleft()
    assert isinstance(request, SessionRequest)
    net.apply(
        net.seller,
        RequestReceived(
            net.buyer.address,
            request,
            offer,
            net.buyer.address,
            TOKEN,
            0,
            0,
            False,
            net.now,
            "the sealed credentials do not open",
        ),
    )
    assert SESSION not in net.seller.states
    _, answer = net.queues[net.buyer.address][0]
    assert isinstance(answer, SessionRejected)
    assert answer.reason == "supply_refused: the sealed credentials do not open"
    net.deliver_messages(net.buyer)
    assert net.buyer.state.phase is SessionPhase.REJECTED
    assert net.buyer.sent_total == 0


def test_supply_terms_are_bounded_on_the_wire() -> None:
    request = SessionRequest(b"\x01" * 32, b"\x02" * 32, CHANNEL, 1, 0, 0, False, 0, 0, 0, b"")
    plain = to_plain(request)
    assert from_plain(plain) == request
    plain["supply_terms"] = "0x" + "ab" * 1025
    with pytest.raises(MalformedMessage, match="longer than 1024 bytes"):
        from_plain(plain)


@pytest.mark.parametrize(
    ("target", "budget", "why"),
    [
        (3, 0, "the offer sells at least 5 Wh"),
        (0, 40, "the budget does not buy the offer's minimum of 5 Wh"),
    ],
)
def test_a_purchase_below_the_offers_minimum_is_refused_on_both_sides(
    target: int, budget: int, why: str
) -> None:
    net = SessionNet()
    offer = replace(make_offer(net.seller.address), min_units=5)
    net.start(offer, target=target, budget=budget)
    assert net.buyer.refused[-1].message == why
    assert SESSION not in net.buyer.states
    request = SessionRequest(
        SESSION, offer.offer_id, CHANNEL, 10**6, budget, target, False, 0, 0, net.now
    )
    net.apply(
        net.seller,
        RequestReceived(
            net.buyer.address, request, offer, net.buyer.address, TOKEN, 0, 0, False, net.now
        ),
    )
    assert SESSION not in net.seller.states
    _, answer = net.queues[net.buyer.address][-1]
    assert isinstance(answer, SessionRejected)
    assert answer.reason == f"invalid_offer: {why}"
