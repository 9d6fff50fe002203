"""Metered sessions where a second mutation audit found rules no test pinned: refusals
that must leave the state object as it was and name the session, stop rules at their
exact bound (silence, receipt timeout, target, budget), which base each side counts its
payments from when the two bases differ, what is said again to a quiet peer and how
often, and the reconciliation of receipts after a session ended on a silence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from m2mpay.plain import from_plain, to_plain
from m2mpay.stream.inputs import (
    ChannelTotals,
    MeterReading,
    PayFailed,
    RequestReceived,
    Reverse,
    SessionInput,
    SessionReceived,
    SessionTick,
    SetPrice,
    StartSession,
    StopSession,
)
from m2mpay.stream.machine import is_session_refusal, session_key, transition
from m2mpay.stream.messages import (
    DeliveryReport,
    PriceAnswer,
    PriceChange,
    SessionAccepted,
    SessionError,
    SessionRejected,
    SessionRequest,
    SessionReverse,
    SessionStop,
    SignedReceipt,
)
from m2mpay.stream.offer import Leader
from m2mpay.stream.outputs import (
    PayUpTo,
    SendSession,
    SessionCode,
    SessionNotify,
    SessionOutput,
    SessionRefused,
    SessionStarted,
    SessionStopped,
)
from m2mpay.stream.receipts import sign_receipt
from m2mpay.stream.state import SessionPhase
from tests.stream.harness import CHANNEL, NOW, SESSION, TOKEN, Party, SessionNet, make_offer

PRICE = 10
REVERSE_PRICE = 8
WINDOW = 10
SILENCE_MS = 5_000  # the harness's silence, receipt timeout
RESEND_MS = 1_000  # and resend interval
OTHER = b"\x66" * 32


def _net(
    leader: Leader = Leader.DELIVERER,
    *,
    price: int = PRICE,
    reverse_price: int = REVERSE_PRICE,
    allow_reverse: bool = True,
    budget: int = 0,
    target: int = 0,
    batch: int = 5,
    bases: tuple[int, int] = (0, 0),
) -> SessionNet:
    """A session accepted on both sides; `bases` are what buyer and seller had already
    paid each other on the channel before it started."""
    net = SessionNet()
    net.buyer.sent_total, net.seller.sent_total = bases
    offer = make_offer(
        net.seller.address,
        price=price,
        window=WINDOW,
        batch=batch,
        leader=leader,
        reverse_price=reverse_price,
    )
    net.start(offer, allow_reverse=allow_reverse, budget=budget, target=target)
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    assert net.buyer.state.phase is net.seller.state.phase is SessionPhase.ACTIVE
    return net


def _sent(outputs: tuple[SessionOutput, ...]) -> list[object]:
    return [o.message for o in outputs if isinstance(o, SendSession)]


def _refused(party: Party, inp: SessionInput) -> list[tuple[SessionCode, bytes | None]]:
    """Run a refused input: the state object stays as it was, the engine sees a refusal,
    and every refusal (ours, and the error told to the peer) names the session."""
    key = session_key(inp)
    before = party.states.get(key) if key is not None else None
    after, outputs = transition(party.ctx, before, inp)
    assert after is before
    assert is_session_refusal(before, after, outputs)
    for message in _sent(outputs):
        assert isinstance(message, SessionError | SessionRejected)
        assert message.session_id == key
    return [(o.code, o.session_id) for o in outputs if isinstance(o, SessionRefused)]


def _phase(party: Party) -> SessionPhase:
    return party.state.phase


def _received(net: SessionNet, to: Party, message: object) -> SessionReceived:
    return SessionReceived(net.other(to).address, message, net.now)  # type: ignore[arg-type]


# -- refusals


def test_a_start_on_a_session_id_in_use_or_an_expired_offer_is_refused_by_id() -> None:
    net = _net()
    again = StartSession(SESSION, net.offer, CHANNEL, 10**6, 0, 0, False, 0, 0, net.now)
    assert _refused(net.buyer, again) == [(SessionCode.INVALID_PHASE, SESSION)]
    expired = replace(net.offer, valid_until_ms=net.now)
    start = StartSession(OTHER, expired, CHANNEL, 10**6, 0, 0, False, 0, 0, net.now)
    assert _refused(net.buyer, start) == [(SessionCode.INVALID_OFFER, OTHER)]


@pytest.mark.parametrize(
    ("limit", "budget", "code"),
    [
        (PRICE, 0, None),
        (PRICE - 1, 0, SessionCode.PRICE_ABOVE_LIMIT),
        (10**6, PRICE, None),
        (10**6, PRICE - 1, SessionCode.INVALID_OFFER),
    ],
    ids=["limit-at-price", "limit-below", "budget-one-unit", "budget-below"],
)
def test_a_buyer_starts_at_a_limit_or_budget_of_exactly_the_price(
    limit: int, budget: int, code: SessionCode | None
) -> None:
    net = SessionNet()
    offer = make_offer(net.seller.address, price=PRICE)
    start = StartSession(OTHER, offer, CHANNEL, limit, budget, 0, False, 0, 0, net.now)
    if code is None:
        state, outputs = transition(net.buyer.ctx, None, start)
        assert state is not None
        assert state.phase is SessionPhase.REQUESTED
        assert [type(m) for m in _sent(outputs)] == [SessionRequest]
    else:
        assert _refused(net.buyer, start) == [(code, OTHER)]


def test_a_seller_refuses_an_expired_offer_and_a_session_id_another_buyer_uses() -> None:
    net = _net()
    request = SessionRequest(OTHER, net.offer.offer_id, CHANNEL, 10**6, 0, 0, False, 0, 0, NOW)
    expired = replace(net.offer, valid_until_ms=net.now)
    late = RequestReceived(
        net.buyer.address, request, expired, net.buyer.address, TOKEN, 0, 0, False, net.now
    )
    assert _refused(net.seller, late) == [(SessionCode.INVALID_OFFER, OTHER)]
    stranger = net.seller.address  # any address but the buyer's
    taken = RequestReceived(
        stranger,
        replace(request, session_id=SESSION),
        net.offer,
        stranger,
        TOKEN,
        0,
        0,
        False,
        net.now,
    )
    assert _refused(net.seller, taken) == [(SessionCode.INVALID_PHASE, SESSION)]


def test_a_repeated_request_gets_the_acceptance_again_only_while_the_session_runs() -> None:
    net = _net()
    request = SessionRequest(SESSION, net.offer.offer_id, CHANNEL, 10**6, 0, 0, True, 0, 0, NOW)
    again = RequestReceived(
        net.buyer.address, request, net.offer, net.buyer.address, TOKEN, 0, 0, False, net.now
    )
    outputs = net.step(net.seller, again)
    assert [type(m) for m in _sent(outputs)] == [SessionAccepted]
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    assert net.step(net.seller, again) == ()


@pytest.mark.parametrize(
    ("to_seller", "make", "code"),
    [
        (True, lambda: DeliveryReport(SESSION, False, 1, PRICE, False), SessionCode.INVALID_PHASE),
        (True, lambda: PriceChange(SESSION, 12, 5), SessionCode.INVALID_PHASE),
        (False, lambda: DeliveryReport(SESSION, True, 1, 8, False), SessionCode.INVALID_PHASE),
    ],
    ids=["report-to-the-deliverer", "price-change-to-the-seller", "backward-report-unpaid"],
)
def test_a_message_about_a_part_we_do_not_play_is_refused_and_changes_nothing(
    to_seller: bool, make: object, code: SessionCode
) -> None:
    net = _net(allow_reverse=False)
    party = net.seller if to_seller else net.buyer
    message = make()  # type: ignore[operator]
    if not to_seller:  # the buyer delivers the backward flow: it pays nothing for it
        net.apply(net.buyer, Reverse(SESSION, True, net.now))
    assert _refused(party, _received(net, party, message)) == [(code, SESSION)]


def test_a_message_from_a_stranger_is_refused_by_session() -> None:
    net = _net()
    stranger = net.seller.address
    report = DeliveryReport(SESSION, False, 1, PRICE, False)
    assert _refused(net.seller, SessionReceived(stranger, report, net.now)) == [
        (SessionCode.NOT_A_PARTY, SESSION)
    ]


def test_refusals_of_local_requests_name_the_session() -> None:
    net = _net()
    assert _refused(net.seller, MeterReading(OTHER, False, 1, net.now)) == [
        (SessionCode.UNKNOWN_SESSION, OTHER)
    ]
    assert _refused(net.buyer, StopSession(OTHER, "x", net.now)) == [
        (SessionCode.UNKNOWN_SESSION, OTHER)
    ]
    assert _refused(net.buyer, SetPrice(SESSION, 12, net.now)) == [
        (SessionCode.INVALID_PHASE, SESSION)
    ]


def test_a_peer_error_is_reported_under_the_session() -> None:
    net = _net()
    error = SessionError(SESSION, "whatever", "something went wrong")
    outputs = net.step(net.buyer, _received(net, net.buyer, error))
    assert [(o.code, o.session_id) for o in outputs if isinstance(o, SessionRefused)] == [
        (SessionCode.INVALID_PHASE, SESSION)
    ]


def test_a_reversal_needs_the_buyer_to_ask_and_the_offer_to_price_it() -> None:
    for reverse_price, asked in ((REVERSE_PRICE, False), (0, True)):
        net = _net(reverse_price=reverse_price, allow_reverse=asked)
        for party in (net.seller, net.buyer):
            assert _refused(party, Reverse(SESSION, True, net.now)) == [
                (SessionCode.REVERSE_NOT_AGREED, SESSION)
            ]
        message = SessionReverse(SESSION, True)
        assert _refused(net.buyer, _received(net, net.buyer, message)) == [
            (SessionCode.REVERSE_NOT_AGREED, SESSION)
        ]
    # The smallest positive reverse price is a price.
    net = _net(reverse_price=1, allow_reverse=True)
    assert net.seller.state.allow_reverse
    assert net.buyer.state.allow_reverse


def test_is_session_refusal_needs_an_unchanged_state_and_a_refusal_among_its_outputs() -> None:
    net = _net()
    state = net.buyer.state
    refused = SessionRefused(SessionCode.INVALID_PHASE, "no", SESSION)
    told = SendSession(net.seller.address, SessionError(SESSION, "invalid_phase", "no"))
    assert is_session_refusal(state, state, (refused, told))
    assert not is_session_refusal(state, state, ())  # nothing happened: not a refusal
    assert not is_session_refusal(state, replace(state, heard_ms=1), (refused,))
    assert not is_session_refusal(state, state, (told,))  # no refusal of ours among them


# -- activation and prepayment


def test_a_repeated_acceptance_starts_nothing_again() -> None:
    net = _net(Leader.PAYER)
    accepted = SessionAccepted(SESSION, PRICE, net.now)
    assert net.step(net.buyer, _received(net, net.buyer, accepted)) == ()


@pytest.mark.parametrize(
    ("target", "budget", "prepaid"),
    [(3, 0, 3 * PRICE), (0, 25, 20), (0, 0, WINDOW * PRICE)],
    ids=["target-below-window", "budget-not-a-multiple", "window"],
)
def test_a_payer_that_leads_prepays_the_window_capped_by_target_and_budget(
    target: int, budget: int, prepaid: int
) -> None:
    net = SessionNet()
    net.start(
        make_offer(net.seller.address, price=PRICE, window=WINDOW, leader=Leader.PAYER),
        target=target,
        budget=budget,
    )
    net.deliver_messages(net.seller)
    accepted = net.queues[net.buyer.address].popleft()[1]
    outputs = net.step(net.buyer, _received(net, net.buyer, accepted))
    assert SessionNotify(SessionStarted(SESSION, PRICE)) in outputs
    assert [o for o in outputs if isinstance(o, PayUpTo)] == [
        PayUpTo(SESSION, CHANNEL, False, prepaid)
    ]
    assert net.buyer.state.forward.paid == prepaid


def test_a_buyer_whose_acceptance_was_lost_takes_the_first_forward_report_as_one() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=PRICE, window=WINDOW, batch=5))
    net.deliver_messages(net.seller)
    net.queues[net.buyer.address].clear()  # the acceptance is lost
    assert net.meter(net.seller, False, 5) == 5
    outputs = net.step(net.buyer, _received(net, net.buyer, net.queues[net.buyer.address][0][1]))
    assert _phase(net.buyer) is SessionPhase.ACTIVE
    assert PayUpTo(SESSION, CHANNEL, False, 5 * PRICE) in outputs


# -- stop rules at their bound, and who is told


def test_silence_stops_a_session_one_millisecond_past_the_timeout_and_tells_the_peer() -> None:
    net = _net()
    net.tick(SILENCE_MS)
    assert _phase(net.buyer) is SessionPhase.ACTIVE
    net.now += 1
    outputs = net.step(net.buyer, SessionTick(SESSION, net.now))
    assert _phase(net.buyer) is SessionPhase.STOPPING
    assert any(isinstance(m, SessionStop) for m in _sent(outputs))


def test_a_payment_counts_as_hearing_from_the_payer() -> None:
    net = _net()
    assert net.meter(net.seller, False, 1) == 1
    net.now += SILENCE_MS - 1
    paid = ChannelTotals(SESSION, 0, PRICE, net.now)
    net.apply(net.seller, paid)
    assert net.seller.state.heard_ms == net.now
    net.now += SILENCE_MS
    net.apply(net.seller, SessionTick(SESSION, net.now))
    assert _phase(net.seller) is SessionPhase.ACTIVE


def test_a_stopping_side_gives_up_on_the_receipt_one_millisecond_past_its_timeout() -> None:
    net = _net()
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    net.queues.clear()
    net.now += SILENCE_MS
    net.apply(net.seller, SessionTick(SESSION, net.now))
    assert _phase(net.seller) is SessionPhase.STOPPING
    net.now += 1
    net.apply(net.seller, SessionTick(SESSION, net.now))
    assert _phase(net.seller) is SessionPhase.STOPPED


@pytest.mark.parametrize("target", [3, 4])
def test_the_deliverer_and_the_payer_each_stop_at_the_target_unit(target: int) -> None:
    net = _net(target=target)
    assert net.meter(net.seller, False, target - 1) == target - 1
    assert _phase(net.seller) is SessionPhase.ACTIVE
    assert net.meter(net.seller, False, 1) == 1
    assert _phase(net.seller) is SessionPhase.STOPPING
    assert net.seller.state.stop_reason == "target reached"
    # The buyer stops on the report of exactly the target, and tells the seller.
    report = DeliveryReport(SESSION, False, target, target * PRICE, False)
    outputs = net.step(net.buyer, _received(net, net.buyer, report))
    assert net.buyer.state.stop_reason == "target reached"
    assert any(isinstance(m, SessionStop) for m in _sent(outputs))


@pytest.mark.parametrize(("units", "stops"), [(4, False), (5, True)])
def test_a_budget_of_whole_units_stops_at_its_last_unit(units: int, stops: bool) -> None:
    net = _net(price=1, budget=5, allow_reverse=False, reverse_price=0)
    assert net.meter(net.seller, False, units) == units
    assert (_phase(net.seller) is SessionPhase.STOPPING) is stops
    report = DeliveryReport(SESSION, False, units, units, False)
    net.step(net.buyer, _received(net, net.buyer, report))
    assert (net.buyer.state.stop_reason == "budget exhausted") is stops


def test_a_stop_received_is_not_echoed_back() -> None:
    net = _net()
    stop = SessionStop(SESSION, "done", net.now)
    outputs = net.step(net.buyer, _received(net, net.buyer, stop))
    assert _phase(net.buyer) is SessionPhase.STOPPING
    assert not any(isinstance(m, SessionStop) for m in _sent(outputs))


def test_a_problem_stop_tells_the_peer_why_and_that_we_stopped() -> None:
    net = _net()
    beyond = DeliveryReport(SESSION, False, WINDOW + 1, (WINDOW + 1) * PRICE, False)
    outputs = net.step(net.buyer, _received(net, net.buyer, beyond))
    refusals = [(o.code, o.session_id) for o in outputs if isinstance(o, SessionRefused)]
    assert refusals == [(SessionCode.REPORT_BEYOND_WINDOW, SESSION)]
    sent = _sent(outputs)
    errors = [m for m in sent if isinstance(m, SessionError)]
    assert [e.session_id for e in errors] == [SESSION]
    assert any(isinstance(m, SessionStop) for m in sent)


def test_a_price_refused_either_way_stops_and_tells_the_peer() -> None:
    net = _net()
    net.apply(net.seller, SetPrice(SESSION, 12, net.now))
    change = next(m for _, m in net.queues[net.buyer.address] if isinstance(m, PriceChange))
    refusal = PriceAnswer(SESSION, change.from_unit, False)
    outputs = net.step(net.seller, _received(net, net.seller, refusal))
    assert any(isinstance(m, SessionStop) for m in _sent(outputs))
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=PRICE), limit_price=PRICE)
    net.deliver_messages(net.seller)
    net.deliver_messages(net.buyer)
    outputs = net.step(net.buyer, _received(net, net.buyer, PriceChange(SESSION, PRICE + 1, 1)))
    assert net.buyer.state.stop_reason == "price above our limit"
    assert any(isinstance(m, SessionStop) for m in _sent(outputs))


def test_a_rejected_session_ends_without_a_countersignature() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    outputs = net.step(net.buyer, _received(net, net.buyer, SessionRejected(SESSION, "no")))
    assert _phase(net.buyer) is SessionPhase.REJECTED
    stopped = [o.event for o in outputs if isinstance(o, SessionNotify)]
    assert [(type(e), getattr(e, "countersigned", None)) for e in stopped] == [
        (SessionStopped, False)
    ]


# -- the two bases: what each side paid the other before the session


BASES = (500, 300)  # the buyer had paid the seller 500, the seller the buyer 300


@pytest.mark.parametrize("payer", ["buyer", "seller"])
def test_a_failed_payment_counts_what_was_sent_from_the_payer_s_own_base(payer: str) -> None:
    net = _net(bases=BASES)
    reversed_flow = payer == "seller"
    if reversed_flow:
        net.apply(net.seller, Reverse(SESSION, True, net.now))
        net.deliver_messages(net.buyer)
    party = net.seller if reversed_flow else net.buyer
    base = BASES[1] if reversed_flow else BASES[0]
    price = REVERSE_PRICE if reversed_flow else PRICE
    report = DeliveryReport(SESSION, reversed_flow, 3, 3 * price, False)
    net.apply(party, _received(net, party, report))
    assert party.state.flow(reversed_flow).paid == 3 * price
    # One unit's payment made it out before the channel failed.
    outputs = net.step(party, PayFailed(SESSION, "peer gone", base + price, net.now))
    assert party.state.flow(reversed_flow).paid == price
    assert party.state.phase is SessionPhase.STOPPING
    assert any(isinstance(m, SessionStop) for m in _sent(outputs))
    # Nothing made it out: nothing was paid in this session.
    net = _net(bases=BASES)
    net.apply(net.buyer, _received(net, net.buyer, DeliveryReport(SESSION, False, 3, 30, False)))
    net.apply(net.buyer, PayFailed(SESSION, "peer gone", BASES[0], net.now))
    assert net.buyer.state.forward.paid == 0


def test_the_deliverer_counts_payments_from_the_payer_s_base() -> None:
    net = _net(bases=BASES)
    net.meter(net.seller, False, 3)
    net.apply(net.seller, ChannelTotals(SESSION, BASES[1], BASES[0] + 2 * PRICE, net.now))
    assert net.seller.state.forward.paid == 2 * PRICE
    assert net.seller.refused == []
    # Reversed: the buyer delivers and counts the seller's payments from the seller's base.
    net.apply(net.seller, Reverse(SESSION, True, net.now))
    net.deliver_messages(net.buyer)
    net.meter(net.buyer, True, 2)
    net.apply(net.buyer, ChannelTotals(SESSION, BASES[0], BASES[1] + REVERSE_PRICE, net.now))
    assert net.buyer.state.backward.paid == REVERSE_PRICE
    assert net.buyer.refused == []


def test_a_payer_catches_up_a_payment_a_crash_cut_short_and_only_that() -> None:
    net = _net(bases=BASES)
    net.apply(net.seller, Reverse(SESSION, True, net.now))
    net.deliver_messages(net.buyer)
    report = DeliveryReport(SESSION, True, 2, 2 * REVERSE_PRICE, False)
    net.apply(net.seller, _received(net, net.seller, report))
    paid = net.seller.state.backward.paid
    assert paid == 2 * REVERSE_PRICE
    # Our node says the channel carries less than we committed: pay again, even though
    # nothing changed in the flow we deliver.
    forward_paid = BASES[0] + net.seller.state.forward.paid
    short = ChannelTotals(SESSION, BASES[1] + paid - 1, forward_paid, net.now)
    assert PayUpTo(SESSION, CHANNEL, True, paid) in net.step(net.seller, short)
    full = ChannelTotals(SESSION, BASES[1] + paid, forward_paid, net.now)
    assert not any(isinstance(o, PayUpTo) for o in net.step(net.seller, full))


# -- reports, batches and reversal


def test_a_report_goes_out_once_per_batch_metered() -> None:
    net = _net(batch=5)
    reports = 0
    for _ in range(WINDOW):
        net.meter(net.seller, False, 1)
        reports += sum(isinstance(m, DeliveryReport) for _, m in net.queues[net.buyer.address])
        net.queues[net.buyer.address].clear()
    assert reports == WINDOW // 5


def test_a_payer_that_leads_lets_delivery_run_to_exactly_what_was_paid() -> None:
    net = _net(Leader.PAYER, price=1, reverse_price=0, allow_reverse=False)
    assert net.buyer.state.forward.paid == WINDOW
    assert net.seller.state.forward.allowed == 0  # nothing seen paid yet
    net.settle_payments(net.seller)
    assert net.seller.state.forward.allowed == WINDOW
    assert net.meter(net.seller, False, WINDOW + 5) == WINDOW
    # A report one unit past what was paid is beyond the window of a payer that leads.
    # (The buyer has heard of no unit yet: it paid the window, no more.)
    beyond = DeliveryReport(SESSION, False, WINDOW + 1, WINDOW + 1, False)
    outputs = net.step(net.buyer, _received(net, net.buyer, beyond))
    assert SessionCode.REPORT_BEYOND_WINDOW in [
        o.code for o in outputs if isinstance(o, SessionRefused)
    ]


def test_a_reversal_reports_the_flow_that_stops_and_the_new_payer_prepays() -> None:
    net = _net(Leader.PAYER)
    net.settle_payments(net.seller)
    assert net.meter(net.seller, False, 5) == 5
    net.deliver_messages(net.buyer)  # the buyer heard of the 5 units, and paid ahead
    assert net.buyer.state.forward.units == 5
    net.queues.clear()
    outputs = net.step(net.seller, Reverse(SESSION, True, net.now))
    reports = [m for m in _sent(outputs) if isinstance(m, DeliveryReport)]
    assert reports == [DeliveryReport(SESSION, False, 5, 5 * PRICE, False)]
    # The seller now pays first for the backward flow: one window ahead.
    ahead = WINDOW * REVERSE_PRICE
    assert PayUpTo(SESSION, CHANNEL, True, ahead) in outputs
    assert net.seller.state.backward.paid == ahead
    # The buyer, who now delivers, neither reports the forward flow it paid for nor pays.
    outputs = net.step(net.buyer, _received(net, net.buyer, SessionReverse(SESSION, True)))
    assert not any(isinstance(m, DeliveryReport) for m in _sent(outputs))
    assert not any(isinstance(o, PayUpTo) for o in outputs)
    # Back to forward: the buyer already prepaid the window ahead; nothing more to pay.
    net.step(net.buyer, _received(net, net.buyer, SessionReverse(SESSION, False)))
    outputs = net.step(net.seller, Reverse(SESSION, False, net.now))
    assert not net.buyer.state.forward.final


def test_a_reversal_back_prepays_no_further_than_the_target() -> None:
    net = _net(Leader.PAYER, target=WINDOW + 2)
    net.settle_payments(net.seller)
    assert net.meter(net.seller, False, WINDOW) == WINDOW
    net.deliver_messages(net.buyer)
    # Paid first: what was delivered and the two units still wanted, not a whole window.
    assert net.buyer.state.forward.paid == (WINDOW + 2) * PRICE
    net.apply(net.seller, Reverse(SESSION, True, net.now))
    net.deliver_messages(net.buyer)
    outputs = net.step(net.buyer, Reverse(SESSION, False, net.now))
    assert not any(isinstance(o, PayUpTo) for o in outputs)
    assert net.buyer.state.forward.paid == (WINDOW + 2) * PRICE


def test_a_second_price_waits_until_the_first_is_in_effect_and_prices_the_units_between() -> None:
    """One price boundary at a time: a second change proposed before the buyer heard of
    the units up to the first would price those units at the first's new price (a bug the
    audit found: both sides overcharged, and disagreed, for units 7 to 10 here)."""
    net = _net(allow_reverse=False, reverse_price=0, batch=5)
    net.apply(net.seller, SetPrice(SESSION, 12, net.now))
    net.deliver_messages(net.buyer)
    net.deliver_messages(net.seller)
    assert net.seller.state.price_from == WINDOW + 1
    assert net.meter(net.seller, False, 6) == 6
    outputs = net.step(net.seller, SetPrice(SESSION, 15, net.now))
    assert outputs == ()
    assert net.seller.state.proposed_price == 0
    for _ in range(WINDOW):  # units 7 to 10 (and some at 12) go out and are reported
        if net.seller.state.forward.reported >= WINDOW:
            break
        net.run(rounds=1)
    assert net.seller.state.forward.reported >= WINDOW
    net.apply(net.seller, SetPrice(SESSION, 15, net.now))
    change = next(m for _, m in net.queues[net.buyer.address] if isinstance(m, PriceChange))
    net.run(rounds=20)
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    net.run()
    assert net.seller.refused == net.buyer.refused == []
    seller, buyer = net.seller.state, net.buyer.state
    assert buyer.previous_price == seller.previous_price == 12
    assert buyer.price_from == seller.price_from == change.from_unit
    units = seller.forward.units
    assert units >= change.from_unit
    expected = WINDOW * PRICE + (change.from_unit - 1 - WINDOW) * 12
    expected += (units - change.from_unit + 1) * 15
    assert buyer.forward.value == seller.forward.value == expected


# -- receipts


def test_a_receipt_waits_for_both_directions_to_be_final_and_is_sent_once() -> None:
    net = _net()
    net.meter(net.seller, False, 2)
    outputs = net.step(net.seller, StopSession(SESSION, "done", net.now))
    net.perform(net.seller, outputs)
    # The backward flow is the buyer's to declare final: no receipt yet.
    assert not any(isinstance(m, SignedReceipt) for m in _sent(outputs))
    assert net.seller.state.my_receipt is None
    net.deliver_messages(net.buyer)
    final = net.queues[net.seller.address]
    outputs = ()
    while final:
        sender, message = final.popleft()
        outputs += net.step(net.seller, SessionReceived(sender, message, net.now))
    assert sum(isinstance(m, SignedReceipt) for m in _sent(outputs)) == 1
    again = DeliveryReport(SESSION, True, 0, 0, True)  # the buyer repeats its final report
    outputs = net.step(net.seller, _received(net, net.seller, again))
    assert not any(isinstance(m, SignedReceipt) for m in _sent(outputs))


def test_the_peer_s_receipt_first_then_ours_is_sent_with_the_stop_event() -> None:
    net = _net()
    net.meter(net.seller, False, 2)
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    net.deliver_messages(net.buyer)  # the buyer signs and sends its receipt
    net.settle_payments(net.seller)  # and its payment for the two units arrives
    queue = net.queues[net.seller.address]
    receipts = [(s, m) for s, m in queue if isinstance(m, SignedReceipt)]
    reports = [(s, m) for s, m in queue if isinstance(m, DeliveryReport)]
    assert receipts
    assert reports
    net.step(net.seller, SessionReceived(receipts[0][0], receipts[0][1], net.now))
    assert _phase(net.seller) is SessionPhase.STOPPING
    outputs = net.step(net.seller, SessionReceived(reports[0][0], reports[0][1], net.now))
    assert any(isinstance(m, SignedReceipt) for m in _sent(outputs))
    events = [o.event for o in outputs if isinstance(o, SessionNotify)]
    assert any(isinstance(e, SessionStopped) and e.countersigned for e in events)


def test_a_receipt_of_another_channel_is_refused_even_if_signed_by_the_peer() -> None:
    net = _net()
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    net.deliver_messages(net.buyer)
    state = net.seller.state
    other = sign_receipt(net.buyer.ctx, replace(net.buyer.state, channel_id=OTHER))
    assert _refused(net.seller, _received(net, net.seller, other)) == [
        (SessionCode.RECEIPT_MISMATCH, SESSION)
    ]
    forged = sign_receipt(net.seller.ctx, net.buyer.state)  # right view, wrong signer
    assert _refused(net.seller, _received(net, net.seller, forged)) == [
        (SessionCode.BAD_SIGNATURE, SESSION)
    ]
    assert net.seller.state is state


# -- what is said again, and how often


def test_an_unanswered_request_is_repeated_once_per_interval() -> None:
    net = SessionNet()
    net.start(make_offer(net.seller.address))
    net.queues.clear()
    net.now += RESEND_MS - 1
    assert net.step(net.buyer, SessionTick(SESSION, net.now)) == ()
    net.now += 1
    outputs = net.step(net.buyer, SessionTick(SESSION, net.now))
    assert [type(m) for m in _sent(outputs)] == [SessionRequest]
    net.perform(net.buyer, outputs)
    net.now += RESEND_MS - 1
    assert net.step(net.buyer, SessionTick(SESSION, net.now)) == ()
    net.now += 1
    assert [type(m) for m in _sent(net.step(net.buyer, SessionTick(SESSION, net.now)))] == [
        SessionRequest
    ]


def test_a_stalled_deliverer_repeats_its_report_and_its_price_change() -> None:
    net = _net()
    assert net.meter(net.seller, False, WINDOW) == WINDOW
    net.apply(net.seller, SetPrice(SESSION, 12, net.now))
    net.queues.clear()
    net.now += RESEND_MS
    outputs = net.step(net.seller, SessionTick(SESSION, net.now))
    assert _sent(outputs) == [
        DeliveryReport(SESSION, False, WINDOW, WINDOW * PRICE, False),
        PriceChange(SESSION, 12, WINDOW + 1),
    ]
    net.perform(net.seller, outputs)
    net.now += RESEND_MS - 1
    assert net.step(net.seller, SessionTick(SESSION, net.now)) == ()
    # The buyer, who delivers nothing, repeats no report.
    assert not any(
        isinstance(m, DeliveryReport)
        for m in _sent(net.step(net.buyer, SessionTick(SESSION, net.now)))
    )


def test_a_price_change_said_again_is_agreed_once_and_reprices_nothing_before_it() -> None:
    """The seller repeats its price change while the buyer's answer is on its way (a
    stalled deliverer does). The buyer answers the repeat again and keeps its prices: taken
    in again, the new price became the previous one too, the units before the boundary were
    worth less to the buyer than to the seller, and the session stopped on a report
    mismatch (found by a full run under load)."""
    net = _net(allow_reverse=False, reverse_price=0, batch=5)
    assert net.meter(net.seller, False, 8) == 8  # 5 reported, 6 to 8 not yet
    net.apply(net.seller, SetPrice(SESSION, 12, net.now))
    change = next(m for _, m in net.queues[net.buyer.address] if isinstance(m, PriceChange))
    assert change.from_unit == WINDOW + 1
    net.deliver_messages(net.buyer)  # the buyer agrees; its answer waits in the queue
    for _ in range(2):
        outputs = net.step(net.buyer, _received(net, net.buyer, change))
        assert _sent(outputs) == [PriceAnswer(SESSION, change.from_unit, True)]
        assert net.buyer.state.previous_price == PRICE
        assert net.buyer.state.price == 12
    net.run(rounds=20)
    # Said again once the units past the boundary were delivered: still no stop.
    assert net.buyer.state.forward.units > change.from_unit
    net.step(net.buyer, _received(net, net.buyer, change))
    assert net.buyer.state.phase is SessionPhase.ACTIVE
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    net.run()
    assert net.seller.refused == net.buyer.refused == []
    assert net.buyer.state.stop_reason == net.seller.state.stop_reason == "done"
    units = net.seller.state.forward.units
    expected = WINDOW * PRICE + (units - WINDOW) * 12
    assert net.buyer.state.forward.value == net.seller.state.forward.value == expected


@pytest.mark.parametrize("paid_units", [0, 1])
def test_a_deliverer_stalls_only_once_it_delivered_something(paid_units: int) -> None:
    net = _net(Leader.PAYER)
    net.apply(net.seller, ChannelTotals(SESSION, 0, paid_units * PRICE, net.now))
    assert net.meter(net.seller, False, WINDOW) == paid_units
    assert net.seller.state.forward.allowed == paid_units
    net.queues.clear()
    net.now += RESEND_MS
    outputs = net.step(net.seller, SessionTick(SESSION, net.now))
    assert [type(m) for m in _sent(outputs)] == ([DeliveryReport] if paid_units else [])


@pytest.mark.parametrize("who", ["seller", "buyer"])
def test_a_stopping_side_repeats_its_stop_its_final_report_and_its_receipt(who: str) -> None:
    net = _net()
    net.meter(net.seller, False, 2)
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    net.deliver_messages(net.buyer)
    party = net.seller if who == "seller" else net.buyer
    net.queues.clear()
    net.now += RESEND_MS
    outputs = net.step(party, SessionTick(SESSION, net.now))
    net.perform(party, outputs)
    reversed_flow = who == "buyer"
    flow = party.state.flow(reversed_flow)
    kinds = [
        (type(m), getattr(m, "reversed", None), getattr(m, "final", None)) for m in _sent(outputs)
    ]
    expected = [(SessionStop, None, None), (DeliveryReport, reversed_flow, True)]
    if party.state.my_receipt is not None:
        expected.append((SignedReceipt, None, None))
    assert kinds == expected
    assert flow.final
    net.now += RESEND_MS - 1
    assert net.step(party, SessionTick(SESSION, net.now)) == ()


# -- after a silence: reconciling the two views


def _cut_off(net: SessionNet, seller_meters: int) -> None:
    """The link dies, the seller meters on within its permit, both sides time out."""
    for _ in range(seller_meters):
        net.meter(net.seller, False, 1)
    for _ in range(2):
        net.queues.clear()
        net.payments.clear()
        net.tick(SILENCE_MS + 1)
    net.queues.clear()
    net.payments.clear()
    assert net.seller.state.phase is net.buyer.state.phase is SessionPhase.STOPPED


def _drifted(leader: Leader = Leader.DELIVERER, *, price: int = PRICE) -> SessionNet:
    net = SessionNet()
    net.start(make_offer(net.seller.address, price=price, window=20, batch=5, leader=leader))
    net.run(rounds=12)
    _cut_off(net, seller_meters=3)
    return net


def test_a_peer_seen_again_gets_our_stop_final_reports_and_receipt_once_per_interval() -> None:
    net = _drifted()
    for party, reversed_flow in ((net.seller, False), (net.buyer, True)):
        heard = party.state.heard_ms
        assert net.step(party, SessionTick(SESSION, net.now, heard)) == ()  # not seen since
        outputs = net.step(party, SessionTick(SESSION, net.now, heard + 1))
        kinds = [
            (type(m), getattr(m, "reversed", None), getattr(m, "final", None))
            for m in _sent(outputs)
        ]
        assert kinds == [
            (SessionStop, None, None),
            (DeliveryReport, reversed_flow, True),
            (SignedReceipt, None, None),
        ]
        net.perform(party, outputs)
        net.now += RESEND_MS - 1
        assert net.step(party, SessionTick(SESSION, net.now, net.now)) == ()
        net.now += 1
        assert net.step(party, SessionTick(SESSION, net.now, net.now)) != ()


def test_a_payment_in_flight_at_the_cut_counts_once_received_up_to_the_value() -> None:
    net = _drifted()
    seller = net.seller.state
    flow = seller.forward
    assert flow.paid < flow.value
    base = seller.buyer_base
    net.apply(net.seller, ChannelTotals(SESSION, 0, base + flow.paid + PRICE, net.now))
    assert net.seller.state.forward.paid == flow.paid + PRICE
    net.apply(net.seller, ChannelTotals(SESSION, 0, base + flow.value, net.now))
    assert net.seller.state.forward.paid == flow.value
    # Money beyond what was delivered is not this session's; lower totals change nothing.
    for total in (base + flow.value + 1, base + flow.paid):
        before = net.seller.state
        net.apply(net.seller, ChannelTotals(SESSION, 0, total, net.now))
        assert net.seller.state is before
    # The buyer pays, it does not deliver forward: its totals change nothing after the stop.
    before = net.buyer.state
    net.apply(net.buyer, ChannelTotals(SESSION, 0, 10**6, net.now))
    assert net.buyer.state is before


def _receipt(net: SessionNet, signer: Party, *, units: int, value: int, paid: int) -> SignedReceipt:
    state = signer.state
    flow = replace(state.forward, units=units, value=value, paid=paid)
    return sign_receipt(signer.ctx, state.evolve(forward=flow))


def test_after_a_stop_a_receipt_is_checked_before_it_is_merged() -> None:
    net = _drifted()
    seller_receipt = net.seller.state.my_receipt
    assert seller_receipt is not None
    forged = replace(seller_receipt, signature=net.buyer.key.sign_digest(b"\x01" * 32))
    assert _refused(net.buyer, _received(net, net.buyer, forged)) == [
        (SessionCode.BAD_SIGNATURE, SESSION)
    ]
    # More money than the buyer sent, even with more units at the right value.
    flow = net.buyer.state.forward
    more = _receipt(
        net,
        net.seller,
        units=flow.units + 1,
        value=flow.value + PRICE,
        paid=flow.paid + 1,
    )
    assert _refused(net.buyer, _received(net, net.buyer, more)) == [
        (SessionCode.RECEIPT_MISMATCH, SESSION)
    ]


def test_a_deliverer_refuses_a_payer_s_receipt_of_more_units_than_it_metered() -> None:
    net = _drifted()
    flow = net.seller.state.forward
    claim = _receipt(net, net.buyer, units=flow.units + 1, value=flow.value, paid=flow.paid)
    assert _refused(net.seller, _received(net, net.seller, claim)) == [
        (SessionCode.RECEIPT_MISMATCH, SESSION)
    ]


def test_a_payer_that_leads_adopts_no_units_beyond_what_it_paid() -> None:
    net = _drifted(Leader.PAYER, price=1)
    flow = net.buyer.state.forward
    # Exactly what was paid is adoptable; one unit more is credit a payer-first never gave.
    fits = _receipt(net, net.seller, units=flow.paid, value=flow.paid, paid=flow.paid)
    beyond = _receipt(net, net.seller, units=flow.paid + 1, value=flow.paid + 1, paid=flow.paid)
    assert flow.units <= flow.paid
    assert _refused(net.buyer, _received(net, net.buyer, beyond)) == [
        (SessionCode.RECEIPT_MISMATCH, SESSION)
    ]
    net.apply(net.buyer, _received(net, net.buyer, fits))
    assert net.buyer.state.forward.units == flow.paid


def test_outputs_of_a_meter_reading_keep_the_report_when_it_also_stops() -> None:
    net = _net(target=5, batch=5)
    net.meter(net.seller, False, 4)
    net.queues.clear()
    outputs = net.step(net.seller, MeterReading(SESSION, False, 5, net.now))
    reports = [m for m in _sent(outputs) if isinstance(m, DeliveryReport)]
    assert [r.final for r in reports] == [False, True]


def test_a_second_price_may_be_proposed_from_the_report_of_the_unit_before_the_first() -> None:
    net = _net(allow_reverse=False, reverse_price=0, batch=1)
    net.apply(net.seller, SetPrice(SESSION, 12, net.now))
    net.deliver_messages(net.buyer)
    net.deliver_messages(net.seller)
    boundary = net.seller.state.price_from - 1  # the last unit at the old price
    assert net.meter(net.seller, False, boundary - 1) == boundary - 1
    assert net.seller.state.forward.reported == boundary - 1
    assert net.step(net.seller, SetPrice(SESSION, 15, net.now)) == ()
    assert net.meter(net.seller, False, 1) == 1
    outputs = net.step(net.seller, SetPrice(SESSION, 15, net.now))
    assert [type(m) for m in _sent(outputs)] == [PriceChange]


def test_a_reading_of_a_meter_we_do_not_run_changes_nothing() -> None:
    net = _net()
    state = net.buyer.state
    assert transition(net.buyer.ctx, state, MeterReading(SESSION, False, 3, net.now)) == (
        state,
        (),
    )


def test_a_seller_allows_no_reversal_the_offer_does_not_price_whatever_the_request() -> None:
    net = SessionNet()
    offer = make_offer(net.seller.address, reverse_price=0)
    net.offer = offer
    request = SessionRequest(SESSION, offer.offer_id, CHANNEL, 10**6, 0, 0, True, 0, 0, NOW)
    received = RequestReceived(
        net.buyer.address, request, offer, net.buyer.address, TOKEN, 0, 0, False, net.now
    )
    net.apply(net.seller, received)
    assert _phase(net.seller) is SessionPhase.ACTIVE
    assert not net.seller.state.allow_reverse


def test_a_repeated_report_after_the_receipts_are_signed_is_neither_paid_nor_refused() -> None:
    net = _net()
    net.meter(net.seller, False, 2)
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    net.run()
    assert _phase(net.buyer) is SessionPhase.STOPPED
    again = DeliveryReport(SESSION, False, 2, 2 * PRICE, True)
    state = net.buyer.state
    assert transition(net.buyer.ctx, state, _received(net, net.buyer, again)) == (state, ())


def test_payments_in_flight_at_the_cut_count_from_the_payer_s_base_in_either_direction() -> None:
    net = _net(bases=BASES)
    net.meter(net.seller, False, 3)  # no report yet (a batch is 5), nothing paid
    _cut_off(net, seller_meters=0)
    assert net.seller.state.forward.paid == 0
    assert net.seller.state.forward.value == 3 * PRICE
    before = net.seller.state
    net.apply(net.seller, ChannelTotals(SESSION, BASES[1], BASES[0], net.now))
    assert net.seller.state is before  # nothing arrived: nothing counts
    net.apply(net.seller, ChannelTotals(SESSION, BASES[1], BASES[0] + 2 * PRICE, net.now))
    assert net.seller.state.forward.paid == 2 * PRICE
    before = net.seller.state
    net.apply(net.seller, ChannelTotals(SESSION, BASES[1], BASES[0] + 2 * PRICE, net.now))
    assert net.seller.state is before  # the same total again changes nothing
    # Reversed: the buyer delivers, and counts the seller's payments from the seller's base.
    net = _net(bases=BASES)
    net.apply(net.seller, Reverse(SESSION, True, net.now))
    net.deliver_messages(net.buyer)
    assert net.meter(net.buyer, True, 3) == 3
    _cut_off(net, seller_meters=0)
    assert net.buyer.state.backward.paid == 0
    net.apply(net.buyer, ChannelTotals(SESSION, BASES[0], BASES[1] + REVERSE_PRICE, net.now))
    assert net.buyer.state.backward.paid == REVERSE_PRICE


def test_a_receipt_that_adds_nothing_to_our_view_is_not_answered_with_ours_again() -> None:
    net = _drifted()
    seller = net.seller.state
    theirs = net.buyer.state.my_receipt
    assert theirs is not None
    assert theirs.stopped_ms == seller.stopped_ms
    assert theirs.forward.units < seller.forward.units  # the buyer heard of fewer units
    outputs = net.step(net.seller, _received(net, net.seller, theirs))
    assert outputs == ()
    assert net.seller.state.my_receipt == seller.my_receipt


def test_a_seller_adopts_the_units_the_buyer_fed_back_during_a_cut() -> None:
    net = _net()
    net.apply(net.seller, Reverse(SESSION, True, net.now))
    net.deliver_messages(net.buyer)
    assert net.meter(net.buyer, True, 3) == 3  # never reported: a batch is 5
    _cut_off(net, seller_meters=0)
    assert net.seller.state.backward.units == 0
    net.now += RESEND_MS
    for party in (net.seller, net.buyer):
        net.apply(party, SessionTick(SESSION, net.now, net.now))
    net.run()
    seller, buyer = net.seller.state, net.buyer.state
    assert seller.backward.units == buyer.backward.units == 3
    assert seller.peer_receipt == buyer.my_receipt
    assert buyer.peer_receipt == seller.my_receipt


def test_a_stop_drops_a_pending_price_and_the_stopped_record_round_trips() -> None:
    net = _net()
    net.apply(net.seller, SetPrice(SESSION, 12, net.now))
    assert net.seller.state.proposed_price == 12
    net.apply(net.seller, StopSession(SESSION, "done", net.now))
    state = net.seller.state
    assert state.proposed_price == 0
    assert from_plain(to_plain(state)) == state


def test_a_price_refused_by_the_buyer_leaves_a_stopped_record_that_round_trips() -> None:
    net = _net()
    net.apply(net.seller, SetPrice(SESSION, 12, net.now))
    change = next(m for _, m in net.queues[net.buyer.address] if isinstance(m, PriceChange))
    refusal = PriceAnswer(SESSION, change.from_unit, False)
    net.apply(net.seller, _received(net, net.seller, refusal))
    state = net.seller.state
    assert state.phase is SessionPhase.STOPPING
    assert state.proposed_price == 0
    assert from_plain(to_plain(state)) == state


def test_a_repeated_meter_reading_leaves_the_state_object_as_it_was() -> None:
    net = _net()
    assert net.meter(net.seller, False, 3) == 3
    state = net.seller.state
    reading = MeterReading(SESSION, False, 3, net.now)
    after, outputs = transition(net.seller.ctx, state, reading)
    assert after is state  # the engine logs an input only if the state object changed
    assert outputs == ()
