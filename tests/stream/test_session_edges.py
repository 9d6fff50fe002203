"""Metered sessions at their edges, where a mutation audit found single-character bugs
slipping through: a report of exactly the credit window and of one unit more, in
either direction of supply; payments at the window's edge on the deliverer's side;
reports and prices that go backwards or stay put."""

from __future__ import annotations

from dataclasses import replace

import pytest

from m2mpay.stream.inputs import (
    ChannelTotals,
    PayFailed,
    RequestReceived,
    Reverse,
    SessionInput,
    SessionReceived,
    SetPrice,
    StopSession,
)
from m2mpay.stream.machine import is_session_refusal, session_key, transition
from m2mpay.stream.messages import DeliveryReport, PriceAnswer, PriceChange, SessionRequest
from m2mpay.stream.offer import Leader
from m2mpay.stream.outputs import (
    PayUpTo,
    PriceAgreed,
    SendSession,
    SessionCode,
    SessionNotify,
    SessionRefused,
)
from m2mpay.stream.state import SessionPhase
from tests.stream.harness import SESSION, TOKEN, Party, SessionNet, make_offer

PRICE = 10
REVERSE_PRICE = 8
WINDOW = 10


def _active(leader: Leader = Leader.DELIVERER, *, batch: int = 5) -> SessionNet:
    """A session accepted on both sides, nothing delivered or paid yet."""
    net = SessionNet()
    offer = make_offer(
        net.seller.address,
        price=PRICE,
        window=WINDOW,
        batch=batch,
        leader=leader,
        reverse_price=REVERSE_PRICE,
    )
    net.start(offer, allow_reverse=True)
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    assert net.buyer.state.phase is SessionPhase.ACTIVE
    assert net.seller.state.phase is SessionPhase.ACTIVE
    return net


def _reversed(net: SessionNet) -> None:
    """The buyer now feeds back and the seller pays: the roles of the flows swap."""
    net.apply(net.seller, Reverse(SESSION, True, net.now))
    net.deliver_messages(net.buyer)
    assert net.buyer.state.reversed


def _report(net: SessionNet, payer: Party, reversed_flow: bool, units: int) -> list[SessionCode]:
    price = REVERSE_PRICE if reversed_flow else PRICE
    flow = payer.state.flow(reversed_flow)
    value = flow.value + (units - flow.units) * price
    deliverer = net.other(payer)
    message = DeliveryReport(SESSION, reversed_flow, units, value, False)
    net.queues[payer.address].append((deliverer.address, message))
    net.deliver_messages(payer, 1)
    return [r.code for r in payer.refused]


@pytest.mark.parametrize("reversed_flow", [False, True], ids=["forward", "backward"])
def test_a_report_of_exactly_the_window_is_paid(reversed_flow: bool) -> None:
    net = _active()
    if reversed_flow:
        _reversed(net)
    payer = net.seller if reversed_flow else net.buyer
    price = REVERSE_PRICE if reversed_flow else PRICE
    paid_before = payer.sent_total
    assert _report(net, payer, reversed_flow, WINDOW) == []
    assert payer.sent_total - paid_before == WINDOW * price
    assert payer.state.phase is SessionPhase.ACTIVE


@pytest.mark.parametrize("reversed_flow", [False, True], ids=["forward", "backward"])
def test_a_report_of_one_unit_past_the_window_is_refused(reversed_flow: bool) -> None:
    net = _active()
    if reversed_flow:
        _reversed(net)
    payer = net.seller if reversed_flow else net.buyer
    paid_before = payer.sent_total
    assert _report(net, payer, reversed_flow, WINDOW + 1) == [SessionCode.REPORT_BEYOND_WINDOW]
    assert payer.sent_total == paid_before
    assert payer.state.phase is SessionPhase.STOPPING


@pytest.mark.parametrize(
    ("units", "value"),
    [(2, 30), (3, 29), (2, 20)],
    ids=["units-down", "value-down", "both-down"],
)
def test_a_report_that_goes_backwards_is_refused_as_such(units: int, value: int) -> None:
    net = _active()
    assert _report(net, net.buyer, False, 3) == []
    assert (net.buyer.state.forward.units, net.buyer.state.forward.value) == (3, 30)
    report = DeliveryReport(SESSION, False, units, value, False)
    net.queues[net.buyer.address].append((net.seller.address, report))
    net.deliver_messages(net.buyer, 1)
    assert [(r.code, r.message) for r in net.buyer.refused] == [
        (SessionCode.REPORT_MISMATCH, "a report went backwards")
    ]
    assert net.buyer.state.forward.units == 3


def test_the_same_report_twice_pays_nothing_more() -> None:
    net = _active()
    assert _report(net, net.buyer, False, 4) == []
    again = DeliveryReport(SESSION, False, 4, 4 * PRICE, False)
    outputs = net.step(net.buyer, SessionReceived(net.seller.address, again, net.now))
    # A repeated report is normal (lost-report recovery): neither refused nor paid again.
    assert not any(isinstance(o, PayUpTo | SessionRefused) for o in outputs)


def test_a_payer_that_leads_refuses_a_report_past_what_it_paid() -> None:
    """Paying first means the deliverer gets no credit: the window was paid up front."""
    net = _active(Leader.PAYER)
    assert net.buyer.state.forward.paid == WINDOW * PRICE
    assert _report(net, net.buyer, False, WINDOW) == []
    assert _report(net, net.buyer, False, 2 * WINDOW + 1) == [SessionCode.REPORT_BEYOND_WINDOW]


@pytest.mark.parametrize(
    ("leader", "over_by", "refused"),
    [
        (Leader.DELIVERER, 0, False),
        (Leader.DELIVERER, 1, True),
        (Leader.PAYER, 0, False),
        (Leader.PAYER, 1, True),
    ],
)
def test_a_deliverer_takes_payment_up_to_the_window_edge_and_refuses_one_more(
    leader: Leader, over_by: int, refused: bool
) -> None:
    """Paying ahead is the payer's risk only within the window: a payer that leads may
    be up to a window ahead of delivery, one that follows not at all."""
    net = _active(leader)
    seller = net.seller
    value = seller.state.forward.value
    credit = WINDOW * PRICE if leader is Leader.PAYER else 0
    total = seller.state.buyer_base + value + credit + over_by
    net.apply(seller, ChannelTotals(SESSION, seller.sent_total, total, net.now))
    codes = [r.code for r in seller.refused]
    assert codes == ([SessionCode.PAYMENT_BEYOND_WINDOW] if refused else [])
    assert (seller.state.phase is SessionPhase.STOPPING) is refused


@pytest.mark.parametrize("leader", [Leader.DELIVERER, Leader.PAYER])
def test_a_payer_that_leads_pays_one_window_ahead_and_one_that_follows_does_not(
    leader: Leader,
) -> None:
    net = _active(leader)
    ahead = WINDOW * PRICE if leader is Leader.PAYER else 0
    assert net.buyer.sent_total == ahead
    assert _report(net, net.buyer, False, 4) == []
    assert net.buyer.sent_total == 4 * PRICE + ahead


@pytest.mark.parametrize(("batch", "units", "reported"), [(5, 4, False), (5, 5, True)])
def test_a_report_goes_out_when_exactly_a_batch_is_metered(
    batch: int, units: int, reported: bool
) -> None:
    net = _active(batch=batch)
    assert net.meter(net.seller, False, units) == units
    sent = [m for _, m in net.queues[net.buyer.address] if isinstance(m, DeliveryReport)]
    assert bool(sent) is reported
    if reported:
        assert (sent[0].units, sent[0].value) == (units, units * PRICE)


@pytest.mark.parametrize(("offset", "refused"), [(0, True), (1, False)])
def test_a_price_change_must_start_after_the_units_already_delivered(
    offset: int, refused: bool
) -> None:
    net = _active()
    assert _report(net, net.buyer, False, 3) == []
    change = PriceChange(SESSION, 12, 3 + offset)
    net.queues[net.buyer.address].append((net.seller.address, change))
    net.deliver_messages(net.buyer, 1)
    codes = [r.code for r in net.buyer.refused]
    assert codes == ([SessionCode.PRICE_IN_THE_PAST] if refused else [])
    assert net.buyer.state.price == (PRICE if refused else 12)


@pytest.mark.parametrize("reversed_flow", [False, True], ids=["buyer-pays", "seller-pays"])
def test_a_failed_payment_lowers_paid_to_what_the_channel_sent_and_stops(
    reversed_flow: bool,
) -> None:
    """The payer must not count money the channel refused: its receipt would claim it."""
    net = _active()
    if reversed_flow:
        _reversed(net)
    payer = net.seller if reversed_flow else net.buyer
    assert _report(net, payer, reversed_flow, 6) == []
    price = REVERSE_PRICE if reversed_flow else PRICE
    assert payer.state.flow(reversed_flow).paid == 6 * price
    base = payer.state.seller_base if reversed_flow else payer.state.buyer_base
    outputs = net.step(payer, PayFailed(SESSION, "channel closing", base + 2 * price, net.now))
    assert payer.state.flow(reversed_flow).paid == 2 * price
    assert payer.state.phase is SessionPhase.STOPPING
    assert payer.state.stop_reason == "payment failed: channel closing"
    assert any(isinstance(o, SendSession) for o in outputs)  # the peer is told
    # What the channel says it sent never raises what the payer counts as paid.
    other = net.step(payer, PayFailed(SESSION, "again", base + 10 * price, net.now))
    assert payer.state.flow(reversed_flow).paid == 2 * price
    assert other == ()


@pytest.mark.parametrize(
    ("value", "paid", "price", "exposure"),
    [(25, 0, 10, (3, 0)), (20, 0, 10, (2, 0)), (10, 31, 10, (0, 3)), (10, 30, 10, (0, 2))],
)
def test_exposure_rounds_part_units_up(
    value: int, paid: int, price: int, exposure: tuple[int, int]
) -> None:
    net = _active()
    state = net.buyer.state
    state = state.with_flow(False, replace(state.forward, value=value, paid=paid))
    state = state.evolve(price=price)
    assert state.exposure_units(False) == exposure


# -- a seller checks a request at the exact bounds


def _request_codes(
    net: SessionNet,
    *,
    budget: int = 0,
    limit_price: int = 10**6,
    buyer_paid: int = 0,
    seller_paid: int = 0,
    channel_busy: bool = False,
) -> list[SessionCode]:
    """What the seller refuses (nothing: it accepts) a request with these figures, the
    channel totals being what the seller's node sees now."""
    offer = make_offer(net.seller.address, price=PRICE, window=WINDOW)
    net.start(offer)
    request = next(m for _, m in net.queues[net.seller.address] if isinstance(m, SessionRequest))
    # A buyer of ours would not send these figures; another implementation might.
    request = replace(request, budget=budget, limit_price=limit_price)
    received = RequestReceived(
        net.buyer.address,
        request,
        offer,
        net.buyer.address,
        TOKEN,
        request.seller_sent_base + seller_paid,
        request.buyer_sent_base + buyer_paid,
        channel_busy,
        net.now,
    )
    outputs = net.step(net.seller, received)
    return [o.code for o in outputs if isinstance(o, SessionRefused)]


@pytest.mark.parametrize(
    ("budget", "codes"), [(PRICE, []), (PRICE - 1, [SessionCode.INVALID_OFFER])]
)
def test_a_budget_must_buy_at_least_one_unit(budget: int, codes: list[SessionCode]) -> None:
    assert _request_codes(SessionNet(), budget=budget) == codes


@pytest.mark.parametrize(
    ("limit", "codes"), [(PRICE, []), (PRICE - 1, [SessionCode.PRICE_ABOVE_LIMIT])]
)
def test_a_limit_price_equal_to_the_price_is_enough(limit: int, codes: list[SessionCode]) -> None:
    assert _request_codes(SessionNet(), limit_price=limit) == codes


@pytest.mark.parametrize(
    ("buyer_paid", "seller_paid", "codes"),
    [
        (0, 0, []),
        (-1, 0, []),  # the buyer's payment is still on its way to us: not counted in
        (1, 0, [SessionCode.CHANNEL_BUSY]),  # paid before the session, claimed as in it
        (0, 1, [SessionCode.CHANNEL_BUSY]),
        (0, -1, [SessionCode.CHANNEL_BUSY]),
    ],
)
def test_a_request_must_start_from_the_channel_totals_as_the_seller_sees_them(
    buyer_paid: int, seller_paid: int, codes: list[SessionCode]
) -> None:
    net = SessionNet()
    # Start from non-zero totals so that one unit below them is a valid total.
    net.buyer.sent_total = net.seller.sent_total = 500
    assert _request_codes(net, buyer_paid=buyer_paid, seller_paid=seller_paid) == codes


def test_a_busy_channel_is_refused() -> None:
    assert _request_codes(SessionNet(), channel_busy=True) == [SessionCode.CHANNEL_BUSY]


# -- price changes


def _price_change(net: SessionNet, price: int) -> PriceChange:
    net.apply(net.seller, SetPrice(SESSION, price, net.now))
    changes = [m for _, m in net.queues[net.buyer.address] if isinstance(m, PriceChange)]
    assert len(changes) == 1
    return changes[0]


@pytest.mark.parametrize(("price", "refused"), [(0, True), (1, False)])
def test_a_new_price_must_be_positive(price: int, refused: bool) -> None:
    net = _active()
    outputs = net.step(net.seller, SetPrice(SESSION, price, net.now))
    codes = [o.code for o in outputs if isinstance(o, SessionRefused)]
    assert codes == ([SessionCode.INVALID_OFFER] if refused else [])


def test_only_the_seller_sets_the_price() -> None:
    net = _active()
    outputs = net.step(net.buyer, SetPrice(SESSION, 12, net.now))
    assert [o.code for o in outputs if isinstance(o, SessionRefused)] == [SessionCode.INVALID_PHASE]


def test_a_proposed_price_holds_delivery_at_the_unit_before_it_until_agreed() -> None:
    net = _active()
    allowed = net.seller.state.forward.allowed
    change = _price_change(net, 12)
    assert change.from_unit == allowed + 1
    # Another signal while one is pending, or the same price, proposes nothing.
    assert net.step(net.seller, SetPrice(SESSION, 13, net.now)) == ()
    assert net.seller.state.forward.allowed == allowed
    # Delivered and paid up to the proposal: the old price would permit more, but no
    # unit past the proposal goes out before the buyer answers.
    assert net.meter(net.seller, False, allowed) == allowed
    paid = net.seller.state.buyer_base + allowed * PRICE
    net.apply(net.seller, ChannelTotals(SESSION, net.seller.sent_total, paid, net.now))
    assert net.seller.refused == []
    assert net.seller.state.forward.allowed == allowed
    answer = PriceAnswer(SESSION, change.from_unit, True)
    outputs = net.step(net.seller, SessionReceived(net.buyer.address, answer, net.now))
    state = net.seller.state
    assert (state.price, state.price_from, state.previous_price) == (12, allowed + 1, PRICE)
    assert (state.proposed_price, state.proposed_from) == (0, 0)
    assert SessionNotify(PriceAgreed(SESSION, 12, allowed + 1)) in outputs
    assert state.forward.allowed > allowed  # agreed: delivery goes on at the new price


def test_an_answer_about_another_unit_is_ignored_and_a_refusal_stops() -> None:
    net = _active()
    change = _price_change(net, 12)
    stale = PriceAnswer(SESSION, change.from_unit - 1, True)
    assert net.step(net.seller, SessionReceived(net.buyer.address, stale, net.now)) == ()
    assert net.seller.state.price == PRICE
    refusal = PriceAnswer(SESSION, change.from_unit, False)
    net.step(net.seller, SessionReceived(net.buyer.address, refusal, net.now))
    assert net.seller.state.price == PRICE
    assert net.seller.state.phase is SessionPhase.STOPPING
    assert net.seller.state.stop_reason == "the buyer refused the price"


@pytest.mark.parametrize(("over", "accepted"), [(0, True), (1, False)])
def test_a_buyer_accepts_a_price_up_to_its_limit(over: int, accepted: bool) -> None:
    net = SessionNet()
    offer = make_offer(net.seller.address, price=PRICE, window=WINDOW)
    net.start(offer, limit_price=15)
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    change = PriceChange(SESSION, 15 + over, 1)
    outputs = net.step(net.buyer, SessionReceived(net.seller.address, change, net.now))
    answers = [o.message for o in outputs if isinstance(o, SendSession)]
    assert PriceAnswer(SESSION, 1, accepted) in answers
    assert net.buyer.state.price == (15 if accepted else PRICE)


# -- refusals change nothing and are recognised as such (the engine neither logs nor
# stores them)


def _refused_codes(party: Party, inp: SessionInput) -> list[tuple[SessionCode, bytes | None]]:
    key = session_key(inp)
    before = party.states.get(key) if key is not None else None
    after, outputs = transition(party.ctx, before, inp)
    assert after is before
    assert is_session_refusal(before, after, outputs)
    return [(o.code, o.session_id) for o in outputs if isinstance(o, SessionRefused)]


OTHER = b"\x66" * 32


@pytest.mark.parametrize(
    ("inp", "code"),
    [
        (SetPrice(OTHER, 12, 0), SessionCode.UNKNOWN_SESSION),
        (Reverse(OTHER, True, 0), SessionCode.UNKNOWN_SESSION),
        (SetPrice(SESSION, 0, 0), SessionCode.INVALID_OFFER),
    ],
    ids=["price-unknown", "reverse-unknown", "price-zero"],
)
def test_a_refused_seller_request_changes_nothing(
    inp: SetPrice | Reverse, code: SessionCode
) -> None:
    net = _active()
    assert _refused_codes(net.seller, inp) == [(code, inp.session_id)]


def test_a_refused_reversal_changes_nothing_on_either_side() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, reverse_price=0))
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    for party in (net.seller, net.buyer):
        assert _refused_codes(party, Reverse(SESSION, True, net.now)) == [
            (SessionCode.REVERSE_NOT_AGREED, SESSION)
        ]
    net.apply(net.buyer, StopSession(SESSION, "done", net.now))
    assert _refused_codes(net.buyer, Reverse(SESSION, True, net.now)) == [
        (SessionCode.INVALID_PHASE, SESSION)
    ]
