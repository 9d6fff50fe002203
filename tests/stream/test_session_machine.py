"""The metered-session protocol, pure: flows, stop rules, prices, reversal, bad input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import product

import pytest

from m2mpay.crypto import PrivateKey
from m2mpay.errors import ChannelError
from m2mpay.stream.inputs import Reverse, SessionReceived, SetPrice, StopSession
from m2mpay.stream.messages import (
    DeliveryReport,
    PriceChange,
    SessionError,
    SessionStop,
    SignedReceipt,
)
from m2mpay.stream.offer import Leader
from m2mpay.stream.outputs import SessionCode, SessionStarted, SessionStopped
from m2mpay.stream.state import SESSION_TRANSITIONS, SessionPhase
from tests.stream.harness import SESSION, SessionNet, make_offer


def _stopped(events: Sequence[object]) -> SessionStopped:
    stopped = [e for e in events if isinstance(e, SessionStopped)]
    assert len(stopped) == 1, events
    return stopped[0]


def _assert_receipts_match_money(net: SessionNet) -> None:
    """Both hold the same countersigned totals, and they are what the channel moved."""
    seller, buyer = _stopped(net.seller.events), _stopped(net.buyer.events)
    assert seller.countersigned
    assert buyer.countersigned
    assert (seller.forward, seller.backward) == (buyer.forward, buyer.backward)
    assert seller.forward.paid == net.buyer.sent_total
    assert seller.backward.paid == net.seller.sent_total
    assert net.seller.state.phase is SessionPhase.STOPPED
    assert net.buyer.state.phase is SessionPhase.STOPPED


@pytest.mark.parametrize(("start", "end"), list(product(SessionPhase, SessionPhase)))
def test_only_listed_session_phase_changes_are_allowed(
    start: SessionPhase, end: SessionPhase
) -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    state = net.buyer.state.evolve(phase=start)
    if start is end or end in SESSION_TRANSITIONS[start]:
        assert state.moved_to(end).phase is end
    else:
        with pytest.raises(ChannelError, match="invalid_transition"):
            state.moved_to(end)


def test_postpaid_session_runs_to_its_target_and_both_sign_the_receipt() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=10, window=10, batch=5), target=100)
    net.run()
    assert any(isinstance(e, SessionStarted) for e in net.buyer.events)
    _assert_receipts_match_money(net)
    receipt = _stopped(net.buyer.events)
    assert (receipt.forward.units, receipt.forward.value, receipt.forward.paid) == (100, 1000, 1000)
    assert receipt.reason == "target reached"


def test_prepaid_session_pays_a_window_ahead_and_never_more() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, leader=Leader.PAYER, window=4, batch=2), target=30)
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)  # accepted: the buyer prepays one window
    assert net.buyer.sent_total == 40
    assert net.seller.allowed[False] == 0  # nothing delivered before the money is seen
    net.settle_payments(net.seller)
    assert net.seller.allowed[False] == 4
    net.run()
    _assert_receipts_match_money(net)
    receipt = _stopped(net.seller.events)
    assert receipt.forward.units == 30
    assert receipt.forward.paid == 300


@pytest.mark.parametrize("leader", list(Leader))
def test_budget_exhausted_stops_the_session_with_every_paid_unit_delivered(
    leader: Leader,
) -> None:
    net = SessionNet()
    net.start(
        make_offer(net.seller.address, price=10, window=5, batch=2, leader=leader), budget=237
    )
    net.run()
    receipt = _stopped(net.buyer.events)
    assert receipt.reason == "budget exhausted"
    # The seller knows the budget: 23 whole units, paid and delivered, 7 left unspent.
    assert (receipt.forward.units, receipt.forward.value, receipt.forward.paid) == (23, 230, 230)
    assert net.seller.metered[False] == 23
    _assert_receipts_match_money(net)


def test_seller_stops_and_the_last_units_are_paid() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, batch=5))
    net.run(rounds=23)
    net.apply(net.seller, StopSession(SESSION, "supply ended", net.now))
    net.run()
    receipt = _stopped(net.buyer.events)
    assert receipt.reason == "supply ended"
    assert receipt.forward.paid == receipt.forward.value  # the final report was paid
    _assert_receipts_match_money(net)


def test_maximum_units_of_the_offer_stop_the_session() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, max_units=42))
    net.run()
    assert _stopped(net.seller.events).forward.units == 42
    _assert_receipts_match_money(net)


def test_a_silent_peer_stops_the_session_with_our_receipt() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    net.run(rounds=12)
    net.queues.clear()  # the buyer vanishes
    net.tick(5_001)
    assert net.seller.state.phase is SessionPhase.STOPPING
    net.queues.clear()
    net.tick(5_001)
    receipt = _stopped(net.seller.events)
    assert receipt.reason == "the peer fell silent"
    assert not receipt.countersigned
    assert net.seller.state.my_receipt is not None
    # Nothing was delivered beyond the window of what was paid.
    unpaid = receipt.forward.value - receipt.forward.paid
    assert unpaid <= net.offer.window * net.offer.price


def test_a_lost_report_is_repeated_while_the_deliverer_waits_for_money() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, window=4, batch=2))
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    while net.meter(net.seller, False, 1):
        pass  # the permit runs out: the seller waits to be paid
    net.queues[net.buyer.address].clear()  # its reports die with a crashed buyer process
    net.tick(500)
    assert not net.queues[net.buyer.address]  # quiet for less than resend_ms: patience
    net.tick(600)
    repeated = [m for _, m in net.queues[net.buyer.address] if isinstance(m, DeliveryReport)]
    assert [(r.units, r.value) for r in repeated] == [(4, 4 * net.offer.price)]
    net.run()
    assert net.buyer.sent_total > 0  # the repeat was paid and units flow again
    assert net.seller.state.forward.units > 4


def test_a_lost_stop_is_repeated_until_the_peer_countersigns() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, batch=5))
    net.run(rounds=10)
    net.apply(net.seller, StopSession(SESSION, "supply ended", net.now))
    net.queues[net.buyer.address].clear()  # the stop and the final report are lost
    net.run()
    assert net.buyer.state.phase is SessionPhase.ACTIVE
    net.tick(1_000)
    net.run()
    _assert_receipts_match_money(net)
    # A stopped party answers a repeated stop with its receipt, and nothing else.
    receipt = net.buyer.state.my_receipt
    net.queues.clear()
    net.apply(
        net.buyer, SessionReceived(net.seller.address, SessionStop(SESSION, "again", 0), net.now)
    )
    assert list(net.queues[net.seller.address]) == [(net.buyer.address, receipt)]


def test_a_lost_acceptance_is_recovered_by_repeating_the_request() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    net.deliver_messages(net.seller)
    net.queues[net.buyer.address].clear()  # the acceptance is lost
    net.tick(1_000)
    net.run()
    assert net.buyer.state.phase is SessionPhase.ACTIVE
    assert net.seller.state.forward.units > 0
    assert not net.seller.refused  # the repeated request was answered, not refused


def test_a_buyer_that_stops_unanswered_ends_once_the_seller_says_it_never_started() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    net.queues[net.seller.address].clear()  # the request never arrives
    net.apply(net.buyer, StopSession(SESSION, "changed my mind", net.now))
    assert net.buyer.state.phase is SessionPhase.STOPPING  # the seller might have started
    net.run()
    stopped = _stopped(net.buyer.events)
    assert stopped.reason == "the seller never started the session"
    assert not stopped.countersigned
    assert net.buyer.sent_total == 0


def test_a_buyer_that_stops_unanswered_pays_for_what_the_seller_already_delivered() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, batch=1))
    net.deliver_messages(net.seller)
    net.meter(net.seller, False, 3)
    accepted_and_reports = net.queues[net.buyer.address]
    accepted_and_reports.popleft()  # the acceptance is lost; the reports arrive
    net.apply(net.buyer, StopSession(SESSION, "changed my mind", net.now))
    net.run()
    _assert_receipts_match_money(net)
    delivered = net.seller.metered[False]
    assert delivered >= 3
    assert _stopped(net.seller.events).forward.paid == delivered * net.offer.price


def test_both_stopping_at_once_agree_on_the_earlier_time() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, batch=5))
    net.run(rounds=10)
    net.apply(net.seller, StopSession(SESSION, "supply ended", net.now))
    net.now += 7
    net.apply(net.buyer, StopSession(SESSION, "battery full", net.now))  # before hearing it
    net.run()
    _assert_receipts_match_money(net)
    assert net.seller.state.stopped_ms == net.buyer.state.stopped_ms == net.now - 7


def test_dynamic_price_accepted_applies_to_later_units_only() -> None:
    net = SessionNet()
    net.start(
        make_offer(net.seller.address, price=10, window=10, batch=5), target=60, limit_price=15
    )
    net.run(rounds=20)
    net.apply(net.seller, SetPrice(SESSION, 12, net.now))
    net.run()
    receipt = _stopped(net.buyer.events)
    from_unit = net.buyer.state.price_from
    assert net.buyer.state.price == 12
    assert receipt.forward.value == (from_unit - 1) * 10 + (60 - from_unit + 1) * 12
    _assert_receipts_match_money(net)


def test_a_price_above_the_buyers_limit_stops_the_session() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=10), limit_price=11)
    net.run(rounds=10)
    net.apply(net.seller, SetPrice(SESSION, 20, net.now))
    net.run()
    receipt = _stopped(net.buyer.events)
    assert receipt.reason == "price above our limit"
    assert receipt.forward.value == receipt.forward.units * 10  # no unit at the new price
    _assert_receipts_match_money(net)


def test_a_price_for_units_already_delivered_is_refused() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=10, batch=1))
    net.run(rounds=10)
    delivered = net.buyer.state.forward.units
    net.queues[net.buyer.address].append((net.seller.address, PriceChange(SESSION, 5, delivered)))
    net.deliver_messages(net.buyer, 1)
    assert [r.code for r in net.buyer.refused] == [SessionCode.PRICE_IN_THE_PAST]
    assert net.buyer.state.phase is SessionPhase.STOPPING
    assert net.buyer.state.price == 10


def test_reverse_flow_pays_the_buyer_for_what_it_feeds_back() -> None:
    net = SessionNet()
    offer = make_offer(net.seller.address, price=10, reverse_price=8, batch=2)
    net.start(offer, allow_reverse=True)
    net.run(rounds=20)
    forward_units = net.seller.state.forward.units
    net.apply(net.seller, Reverse(SESSION, True, net.now))  # the grid asks for energy back
    net.run(rounds=15)
    assert net.buyer.state.backward.units > 0
    net.apply(net.buyer, StopSession(SESSION, "done", net.now))
    net.run()
    receipt = _stopped(net.seller.events)
    assert receipt.forward.units >= forward_units
    assert receipt.backward.value == receipt.backward.units * 8
    assert receipt.backward.paid == receipt.backward.value
    assert net.seller.sent_total == receipt.backward.paid
    _assert_receipts_match_money(net)


def test_reverse_not_agreed_is_refused() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, reverse_price=0))
    net.run(rounds=5)
    net.apply(net.seller, Reverse(SESSION, True, net.now))
    assert [r.code for r in net.seller.refused] == [SessionCode.REVERSE_NOT_AGREED]
    assert not net.seller.state.reversed


# -- bad input


def test_unknown_offer_is_rejected() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    net.offer = replace(net.offer, offer_id=b"\x01" * 32)
    net.run()
    assert SESSION not in net.seller.states
    assert net.buyer.state.phase is SessionPhase.REJECTED
    assert "unknown_offer" in net.buyer.state.stop_reason


def test_report_beyond_paid_plus_window_is_refused_and_stops_safely() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=10, window=10))
    net.run(rounds=10)
    state = net.buyer.state
    greedy = DeliveryReport(
        SESSION, False, state.forward.units + 50, state.forward.value + 500, False
    )
    paid_before = net.buyer.sent_total
    net.queues[net.buyer.address].append((net.seller.address, greedy))
    net.deliver_messages(net.buyer, 1)
    assert [r.code for r in net.buyer.refused] == [SessionCode.REPORT_BEYOND_WINDOW]
    assert net.buyer.sent_total == paid_before  # not a unit paid beyond the window
    assert net.buyer.state.phase is SessionPhase.STOPPING


def test_report_at_wrong_prices_is_refused() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=10))
    net.run(rounds=3)
    state = net.buyer.state
    cheat = DeliveryReport(SESSION, False, state.forward.units + 1, state.forward.value + 11, False)
    net.queues[net.buyer.address].append((net.seller.address, cheat))
    net.deliver_messages(net.buyer, 1)
    assert [r.code for r in net.buyer.refused] == [SessionCode.REPORT_MISMATCH]


def test_payment_beyond_the_window_is_refused_and_stops_safely() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=10, window=3, batch=1))
    net.run(rounds=4)
    state = net.seller.state
    net.buyer.sent_total += 1_000  # the buyer pays far more than was delivered
    from m2mpay.stream.inputs import ChannelTotals

    net.apply(
        net.seller, ChannelTotals(SESSION, net.seller.sent_total, net.buyer.sent_total, net.now)
    )
    assert [r.code for r in net.seller.refused] == [SessionCode.PAYMENT_BEYOND_WINDOW]
    assert net.seller.state.phase is SessionPhase.STOPPING
    assert net.seller.state.forward.value == state.forward.value  # nothing more delivered


def test_a_receipt_not_signed_by_the_peer_is_refused() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address), target=10)
    net.run(rounds=3)
    net.apply(net.buyer, StopSession(SESSION, "enough", net.now))
    forged_by = PrivateKey.generate()  # a receipt "from the buyer" that the buyer never signed
    state = net.buyer.state
    forward, backward = state.receipt_totals()
    from m2mpay.crypto import session_receipt_digest

    digest = session_receipt_digest(
        net.seller.ctx.domain,
        SESSION,
        state.channel_id,
        (forward.units, forward.value, forward.paid),
        (backward.units, backward.value, backward.paid),
        state.started_ms,
        state.stopped_ms,
    )
    fake = SignedReceipt(
        SESSION,
        state.channel_id,
        forward,
        backward,
        state.started_ms,
        state.stopped_ms,
        forged_by.sign_digest(digest),
    )
    net.deliver_messages(net.seller)  # the stop
    net.queues[net.seller.address].clear()
    net.queues[net.seller.address].append((net.buyer.address, fake))
    net.deliver_messages(net.seller, 1)
    codes = [r.code for r in net.seller.refused]
    assert SessionCode.BAD_SIGNATURE in codes


def test_messages_about_unknown_sessions_are_refused() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    net.run(rounds=2)
    other = b"\x77" * 32
    net.queues[net.seller.address].append((net.buyer.address, SessionError(other, "x", "y")))
    net.deliver_messages(net.seller, 1)
    assert [r.code for r in net.seller.refused] == [SessionCode.UNKNOWN_SESSION]
    assert other not in net.seller.states
