"""Random interleavings of payments, HTTP commitments, deliveries, crashes, resyncs and
closes, with the money-safety invariants of DESIGN.md checked after every step.

Each party follows the node's rule, log then act: an input's outputs are performed
only once the input is durable (`commit`). A crash loses what was not committed
and every message in flight to the crashed party; the party restarts by replaying
its durable log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from m2mpay.channel.context import ProtocolConfig
from m2mpay.channel.inputs import Commit, Input, Pay, Received, RequestClose, Resync
from m2mpay.channel.machine import channel_key, is_refusal, transition
from m2mpay.channel.messages import PaymentMessage
from m2mpay.channel.outputs import CloseTx, Notify, Output, Rejected, Send, Submit
from m2mpay.channel.paying import payment_message
from m2mpay.channel.state import ChannelState, Phase
from tests.channel.harness import Network, Party

DEPOSIT_A, DEPOSIT_B = 1_000, 600


@dataclass
class Durability:
    """A party's log, split into what is durable and what is still pending."""

    durable: list[Input] = field(default_factory=list)
    pending: list[tuple[Input, tuple[Output, ...]]] = field(default_factory=list)
    durable_state: ChannelState | None = None
    max_signed_total: int = 0


class ChannelUnderStress(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = Network(ProtocolConfig(close_timeout_ms=1_000))
        self.channel = self.net.open_channel(deposit_a=DEPOSIT_A, deposit_b=DEPOSIT_B)
        self.logs = {
            p.address: Durability(list(p.log), [], p.state(self.channel), 0)
            for p in (self.net.alice, self.net.bob)
        }
        self.closing = False
        self.cheated = False
        # Commitments each party signed (durably) for the application to carry.
        self.carried: dict[bool, list[PaymentMessage]] = {True: [], False: []}

    # -- the node's rule, modelled

    def _party(self, is_alice: bool) -> Party:
        return self.net.alice if is_alice else self.net.bob

    def _apply(self, party: Party, inp: Input) -> None:
        key = channel_key(party.ctx, inp)
        state = party.channels.get(key) if key else None
        new, outputs = transition(party.ctx, state, inp)
        if is_refusal(state, new, outputs) or (new is state and not outputs):
            return
        if new is not None and key is not None:
            party.channels[key] = new
        self.logs[party.address].pending.append((inp, outputs))
        for output in outputs:
            if isinstance(output, Send) and isinstance(output.message, PaymentMessage):
                self.logs[party.address].max_signed_total = max(
                    self.logs[party.address].max_signed_total, output.message.total
                )

    def _perform(self, party: Party, outputs: tuple[Output, ...]) -> None:
        for output in outputs:
            if isinstance(output, Send):
                self.net.queues[output.peer].append((party.address, output.message))
            elif isinstance(output, Submit):
                self.net.mempool.append((party, output.channel_id, output.tx))
            elif isinstance(output, Notify):
                party.events.append(output.event)
            elif isinstance(output, Rejected):
                party.rejections.append(output)

    # -- rules

    @precondition(lambda self: not self.closing)
    @rule(from_alice=st.booleans(), amount=st.integers(1, 300))
    def pay(self, from_alice: bool, amount: int) -> None:
        party = self._party(from_alice)
        self._apply(party, Pay(self.channel, amount))

    @precondition(lambda self: not self.closing)
    @rule(from_alice=st.booleans(), amount=st.integers(1, 300))
    def commit_for_http(self, from_alice: bool, amount: int) -> None:
        """Sign a commitment; as `Node.commit`, hand it to the application only once
        durable."""
        party = self._party(from_alice)
        before = party.state(self.channel).sent_seq
        self._apply(party, Commit(self.channel, amount))
        state = party.state(self.channel)
        if state.sent_seq == before:
            return  # refused (more than the balance)
        self.commit(from_alice)
        log = self.logs[party.address]
        log.max_signed_total = max(log.max_signed_total, state.sent_total)
        self.carried[from_alice].append(payment_message(party.ctx, state, amount))

    @rule(from_alice=st.booleans(), newest_first=st.booleans())
    def deliver_commitment(self, from_alice: bool, newest_first: bool) -> None:
        """The application carries a commitment to the payee (out of order, maybe)."""
        carried = self.carried[from_alice]
        if not carried:
            return
        message = carried.pop(-1 if newest_first else 0)
        payer = self._party(from_alice)
        self._apply(self.net.other(payer), Received(payer.address, message, self.net.now_ms))

    @rule(to_alice=st.booleans(), count=st.integers(1, 5))
    def deliver(self, to_alice: bool, count: int) -> None:
        party = self._party(to_alice)
        queue = self.net.queues[party.address]
        for _ in range(min(count, len(queue))):
            sender, message = queue.popleft()
            self._apply(party, Received(sender, message, self.net.now_ms))

    @rule(alice=st.booleans())
    def commit(self, alice: bool) -> None:
        party = self._party(alice)
        log = self.logs[party.address]
        for inp, outputs in log.pending:
            log.durable.append(inp)
            self._perform(party, outputs)
        log.pending.clear()
        log.durable_state = party.state(self.channel)

    @rule(alice=st.booleans(), lose_outbound=st.booleans())
    def crash_and_restart(self, alice: bool, lose_outbound: bool) -> None:
        party = self._party(alice)
        log = self.logs[party.address]
        log.pending.clear()
        self.net.queues[party.address].clear()
        if lose_outbound:
            self.net.queues[self.net.other(party).address].clear()
        party.channels.clear()
        for inp in log.durable:
            key = channel_key(party.ctx, inp)
            state = party.channels.get(key) if key else None
            new, _ = transition(party.ctx, state, inp)
            if new is not None and key is not None:
                party.channels[key] = new
        assert party.state(self.channel) == log.durable_state
        # Reconnection: both sides tell each other where they stand.
        self._apply(party, Resync(self.channel))
        self._apply(self.net.other(party), Resync(self.channel))

    @precondition(lambda self: not self.closing)
    @rule(alice=st.booleans())
    def request_close(self, alice: bool) -> None:
        self.closing = True
        self._apply(self._party(alice), RequestClose(self.channel, self.net.now_ms))

    @precondition(lambda self: not self.closing and not self.cheated)
    @rule(alice=st.booleans())
    def close_with_an_old_state(self, alice: bool) -> None:
        """The party submits a unilateral close claiming it paid nothing at all."""
        self.closing = self.cheated = True
        party = self._party(alice)
        state = party.state(self.channel)
        own_zero = (0, state.received_total) if state.we_are_a else (state.received_total, 0)
        proof = state.received_signature if state.received_total else None
        tx = CloseTx(state.terms, state.deposit_a, state.deposit_b, *own_zero, proof)
        self.net.mempool.append((party, self.channel, tx))

    # -- invariants

    @invariant()
    def balances_stay_within_the_deposits(self) -> None:
        for party in (self.net.alice, self.net.bob):
            state = party.state(self.channel)
            assert state.my_balance >= 0
            assert state.peer_balance >= 0
            assert state.my_balance + state.peer_balance == state.total_deposit

    @invariant()
    def nobody_holds_more_than_the_peer_signed(self) -> None:
        for party in (self.net.alice, self.net.bob):
            peer_log = self.logs[self.net.other(party).address]
            assert party.state(self.channel).received_total <= peer_log.max_signed_total

    @invariant()
    def a_held_back_proof_is_older_than_our_newest(self) -> None:
        for party in (self.net.alice, self.net.bob):
            state = party.state(self.channel)
            if state.wire_proof is not None:
                assert state.wire_proof.total < state.sent_total
                assert state.wire_proof.seq < state.sent_seq
                assert state.acked_total < state.sent_total

    @invariant()
    def acknowledged_payments_are_durable_at_the_payee(self) -> None:
        for party in (self.net.alice, self.net.bob):
            peer_durable = self.logs[self.net.other(party).address].durable_state
            assert peer_durable is not None
            assert party.state(self.channel).acked_total <= peer_durable.received_total

    def teardown(self) -> None:
        """Finish: everything committed and delivered, the channel closed, payouts checked."""
        net = self.net
        for _ in range(6):
            for alice in (True, False):
                self.commit(alice)
            while net.queues[net.alice.address] or net.queues[net.bob.address]:
                self.deliver(True, 100)
                self.deliver(False, 100)
                for alice in (True, False):
                    self.commit(alice)
            net.mine()
            for party in (net.alice, net.bob):
                # Chain inputs from mine() went straight to the machines; make them durable.
                self.logs[party.address].durable_state = party.state(self.channel)
            state = net.alice.state(self.channel)
            if state.phase in (Phase.OPEN,):
                self._apply(net.alice, RequestClose(self.channel, net.now_ms))
            for party in (net.alice, net.bob):
                net.tick(party, self.channel, advance_ms=2_000, advance_s=200)
        payouts = net.hub.payouts.get(self.channel)
        assert payouts is not None, f"channel did not close: {net.alice.state(self.channel).phase}"
        assert sum(payouts) == DEPOSIT_A + DEPOSIT_B
        for party, payout in zip((net.alice, net.bob), payouts, strict=True):
            durable = self.logs[party.address].durable_state
            assert durable is not None
            state = durable
            # The money-safety invariant: at least our deposit, less everything we
            # ever signed, plus the newest proof we hold durably.
            floor = (
                state.my_deposit - self.logs[party.address].max_signed_total + state.received_total
            )
            assert payout >= floor, (party.address, payout, floor)


ChannelUnderStress.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestChannelUnderStress = ChannelUnderStress.TestCase
