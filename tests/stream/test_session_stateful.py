"""Random interleavings of deliveries, reports, payments, crashes and stops: neither side's
exposure ever exceeds the credit window.

Exposure is measured against the physical truth, not the machines' views: units the
seller's meter really delivered, and money the buyer's channel really paid. Each
party follows log, then act: a machine's outputs are carried out only once its
input is durable; a crash loses what was not, and the party restarts by replaying
its log and reading its meter and channel again.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from m2mpay.crypto import Address
from m2mpay.stream.context import SessionConfig
from m2mpay.stream.inputs import (
    ChannelTotals,
    MeterReading,
    SessionInput,
    SessionTick,
    StopSession,
)
from m2mpay.stream.offer import Leader
from m2mpay.stream.outputs import SessionOutput, SessionStopped
from m2mpay.stream.state import SessionPhase
from tests.stream.harness import SESSION, Party, SessionNet, make_offer

PRICE, WINDOW = 7, 4


class CrashingNet(SessionNet):
    """Log, then act: a party's outputs are carried out only when it commits the inputs
    behind them; a crash loses what was not committed."""

    def __init__(self) -> None:
        # Peers stay alive however slow the rules make them: no receipt is given up on.
        super().__init__(
            SessionConfig(silence_timeout_ms=5_000, receipt_timeout_ms=10**12, resend_ms=1_000)
        )
        self.durable: dict[Address, list[SessionInput]] = {}
        self.pending: dict[Address, list[tuple[SessionOutput, ...]]] = {}

    def apply(self, party: Party, inp: SessionInput) -> None:
        logged = len(party.log)
        outputs = self.step(party, inp)
        if len(party.log) == logged:
            self.perform(party, outputs)  # a refusal: nothing to log, tell the peer now
        else:
            self.pending.setdefault(party.address, []).append(outputs)

    def commit(self, party: Party) -> None:
        self.durable[party.address] = list(party.log)
        for outputs in self.pending.pop(party.address, []):
            self.perform(party, outputs)

    def crash_and_restart(self, party: Party) -> None:
        self.pending.pop(party.address, None)
        self.queues[party.address].clear()  # in flight to a dead process: lost
        party.states.clear()
        party.log = []
        for inp in self.durable.get(party.address, []):
            self.step(party, inp)
        # On restart the node reads its meters and its channel again.
        if SESSION in party.states:
            for reversed_flow in (False, True):
                if party.state.delivers(reversed_flow) and party.metered[reversed_flow]:
                    reading = MeterReading(
                        SESSION, reversed_flow, party.metered[reversed_flow], self.now
                    )
                    self.apply(party, reading)
            totals = ChannelTotals(
                SESSION, party.sent_total, self.other(party).sent_total, self.now
            )
            self.apply(party, totals)


class SessionUnderStress(RuleBasedStateMachine):
    leader = Leader.DELIVERER
    budget = 0

    def __init__(self) -> None:
        super().__init__()
        self.net = CrashingNet()
        offer = make_offer(
            self.net.seller.address, price=PRICE, window=WINDOW, batch=2, leader=self.leader
        )
        self.net.start(offer, budget=self.budget)
        for _ in range(2):
            for party in self._parties():
                self.net.commit(party)
            self.net.run(rounds=1)

    def _parties(self) -> tuple[Party, Party]:
        return self.net.seller, self.net.buyer

    def _party(self, seller: bool) -> Party:
        return self.net.seller if seller else self.net.buyer

    # -- rules

    @rule(seller=st.booleans(), units=st.integers(1, 6))
    def meter(self, seller: bool, units: int) -> None:
        party = self._party(seller)
        if SESSION in party.states:
            for reversed_flow in (False, True):
                if party.state.delivers(reversed_flow):
                    self.net.meter(party, reversed_flow, units)

    @rule(seller=st.booleans(), count=st.integers(1, 4))
    def deliver(self, seller: bool, count: int) -> None:
        self.net.deliver_messages(self._party(seller), count)

    @rule(seller=st.booleans(), count=st.integers(1, 3))
    def settle(self, seller: bool, count: int) -> None:
        self.net.settle_payments(self._party(seller), count)

    @rule(ms=st.integers(1, 1_500))
    def time_passes(self, ms: int) -> None:
        """Stops land at different times; waiting parties repeat themselves."""
        self.net.now += ms
        for party in self._parties():
            if SESSION in party.states:
                self.net.apply(party, SessionTick(SESSION, self.net.now, self.net.now))

    @rule(seller=st.booleans())
    def commit(self, seller: bool) -> None:
        self.net.commit(self._party(seller))

    @rule(seller=st.booleans())
    def crash_and_restart(self, seller: bool) -> None:
        self.net.crash_and_restart(self._party(seller))

    @rule(seller=st.booleans())
    def stop(self, seller: bool) -> None:
        self.net.apply(self._party(seller), StopSession(SESSION, "enough", self.net.now))

    # -- the invariant

    @invariant()
    def exposure_stays_within_the_window(self) -> None:
        delivered_value = self.net.seller.metered[False] * PRICE
        paid = self.net.buyer.sent_total
        seller_exposure = delivered_value - paid  # delivered, not paid
        buyer_exposure = paid - delivered_value  # paid, not delivered
        if self.budget:
            assert paid <= self.budget
        if self.leader is Leader.DELIVERER:
            assert seller_exposure <= WINDOW * PRICE
            assert buyer_exposure <= 0
        else:
            assert buyer_exposure <= WINDOW * PRICE
            assert seller_exposure <= 0

    def teardown(self) -> None:
        """Everything committed and delivered: the session ends with matching receipts,
        even when a crash lost messages on the way (the waiting side repeats itself)."""
        for attempt in range(12):
            for _ in range(300):
                for party in self._parties():
                    self.net.commit(party)
                self.net.run(rounds=1)
            if all(
                SESSION in p.states and p.state.phase is SessionPhase.STOPPED
                for p in self._parties()
            ):
                break
            if attempt == 0:
                self.net.apply(self.net.buyer, StopSession(SESSION, "teardown", self.net.now))
            else:
                self.net.tick(1_000)
        for party in self._parties():
            assert party.state.phase is SessionPhase.STOPPED, party.state.phase
        stopped = [e for e in self.net.seller.events if isinstance(e, SessionStopped)]
        assert stopped[-1].forward.paid == self.net.buyer.sent_total
        assert stopped[-1].countersigned
        seller, buyer = self.net.seller.state, self.net.buyer.state
        assert seller.my_receipt is not None
        assert buyer.my_receipt is not None
        assert seller.receipt_totals() == buyer.receipt_totals()
        self.exposure_stays_within_the_window()


class PrepaidSessionUnderStress(SessionUnderStress):
    leader = Leader.PAYER


class BudgetedPrepaidSessionUnderStress(SessionUnderStress):
    leader = Leader.PAYER
    budget = 9 * PRICE + 3  # nine units and a rest that buys nothing


for machine in (SessionUnderStress, PrepaidSessionUnderStress, BudgetedPrepaidSessionUnderStress):
    machine.TestCase.settings = settings(
        max_examples=150,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
TestPostpaidSessions = SessionUnderStress.TestCase
TestPrepaidSessions = PrepaidSessionUnderStress.TestCase
TestBudgetedSessions = BudgetedPrepaidSessionUnderStress.TestCase
