"""The channel protocol, pure: every flow and every refusal, without network or chain."""

from __future__ import annotations

from dataclasses import replace
from itertools import product

import pytest

from m2mpay.channel.context import ProtocolConfig
from m2mpay.channel.inputs import (
    Accept,
    ForceClose,
    Pay,
    Propose,
    Received,
    Reject,
    RequestClose,
    Resync,
    TopUp,
)
from m2mpay.channel.machine import transition
from m2mpay.channel.messages import (
    ChannelProposal,
    ChannelTerms,
    CloseProposal,
    PaymentAck,
    PaymentMessage,
)
from m2mpay.channel.outputs import (
    ChannelClosed,
    ChannelDefended,
    ChannelDisputed,
    ChannelExpired,
    ChannelOpened,
    CloseTx,
    CooperativeCloseTx,
    ErrorCode,
    PaymentReceived,
    Rejected,
    Send,
    Submit,
)
from m2mpay.channel.state import ALLOWED_TRANSITIONS, ChannelState, Phase
from m2mpay.crypto import Address, PrivateKey, balance_proof_digest, channel_domain
from m2mpay.errors import ChannelError
from tests.channel.harness import CHAIN_ID, DOMAIN, HUB, TOKEN, Network

# -- the lifecycle table


@pytest.mark.parametrize(("start", "end"), list(product(Phase, Phase)))
def test_only_listed_phase_changes_are_allowed(start: Phase, end: Phase) -> None:
    terms = ChannelTerms(CHAIN_ID, HUB, HUB, TOKEN, TOKEN, 100, 1, 1, 0)
    state = ChannelState(terms, terms.channel_id, True, start)
    if start is end or end in ALLOWED_TRANSITIONS[start]:
        assert state.moved_to(end).phase is end
    else:
        with pytest.raises(ChannelError, match="invalid_transition"):
            state.moved_to(end)


def test_final_phases_have_no_exit() -> None:
    for phase in (Phase.CLOSED, Phase.SETTLED):
        assert ALLOWED_TRANSITIONS[phase] == frozenset()


# -- the honest case


def test_propose_accept_open_pay_both_ways_and_close_cooperatively() -> None:
    net = Network()
    channel = net.open_channel(deposit_a=1_000, deposit_b=500)
    a, b = net.alice.state(channel), net.bob.state(channel)
    assert (a.phase, b.phase) == (Phase.OPEN, Phase.OPEN)
    assert (a.deposit_a, a.deposit_b) == (1_000, 500)
    assert any(isinstance(e, ChannelOpened) for e in net.bob.events)

    for amount in (10, 20, 30):
        net.apply(net.alice, Pay(channel, amount))
    net.apply(net.bob, Pay(channel, 7))
    net.deliver_all()
    a, b = net.alice.state(channel), net.bob.state(channel)
    assert (a.sent_total, a.received_total) == (60, 7)
    assert (b.sent_total, b.received_total) == (7, 60)
    assert a.split() == b.split() == (947, 553)
    assert (a.acked_seq, b.acked_seq) == (3, 1)

    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.deliver_all()
    net.mine()
    assert net.hub.payouts[channel] == (947, 553)
    assert net.alice.state(channel).phase is Phase.CLOSED
    assert net.bob.state(channel).phase is Phase.CLOSED
    closed = [e for e in net.bob.events if isinstance(e, ChannelClosed)]
    assert closed == [ChannelClosed(channel, 947, 553, True)]


def test_payments_are_pipelined_without_waiting_for_acks() -> None:
    net = Network()
    channel = net.open_channel()
    for _ in range(200):
        net.apply(net.alice, Pay(channel, 1))
    assert net.alice.state(channel).sent_seq == 200
    assert net.alice.state(channel).acked_seq == 0
    net.deliver(net.bob)
    assert net.bob.state(channel).received_total == 200
    net.deliver(net.alice)
    assert net.alice.state(channel).acked_total == 200


def test_close_with_payments_in_flight_counts_them() -> None:
    """Bob pays twice; alice asks to close before she has seen them; the close still counts them."""
    net = Network()
    channel = net.open_channel(deposit_a=1_000, deposit_b=400)
    net.apply(net.bob, Pay(channel, 50))
    net.apply(net.bob, Pay(channel, 25))
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.deliver(net.bob)  # bob sees the proposal after his payments left
    net.deliver(net.alice)  # alice gets the payments, then bob's signed split
    net.mine()
    assert net.hub.payouts[channel] == (1_075, 325)


def test_close_proposal_from_both_sides_at_once_still_closes() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Pay(channel, 100))
    net.deliver_all()
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.apply(net.bob, RequestClose(channel, net.now_ms))
    net.deliver_all()
    net.mine()
    assert net.hub.payouts[channel] == (900, 100)
    # One of the two submissions lost the race on chain; nothing else went wrong.
    assert all(reason == "channel already settled" for _, reason in net.failed_tx)


def test_top_up_raises_what_can_be_paid() -> None:
    net = Network()
    channel = net.open_channel(deposit_a=10)
    net.apply(net.alice, Pay(channel, 10))
    outputs = net.apply(net.alice, Pay(channel, 1))
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.INSUFFICIENT_BALANCE]
    net.apply(net.alice, TopUp(channel, 5))
    net.mine()
    assert net.alice.state(channel).deposit_a == 15
    assert net.bob.state(channel).deposit_a == 15
    net.apply(net.alice, Pay(channel, 5))
    net.deliver_all()
    assert net.bob.state(channel).received_total == 15


# -- the peer cheats on chain


def test_stale_unilateral_close_is_answered_with_the_newest_proof() -> None:
    """The car (alice) paid the charger (bob) 600, then closes claiming it paid 100."""
    net = Network()
    channel = net.open_channel(deposit_a=1_000)
    for _ in range(6):
        net.apply(net.alice, Pay(channel, 100))
    net.deliver_all()
    stale = net.alice.state(channel)
    tx = CloseTx(stale.terms, stale.deposit_a, stale.deposit_b, 100, 0, None)
    net.mempool.append((net.alice, channel, tx))
    net.mine()  # the close lands; bob's machine answers with a challenge, mined too
    assert any(isinstance(e, ChannelDisputed) for e in net.bob.events)
    assert any(isinstance(e, ChannelDefended) for e in net.bob.events)
    net.tick(net.bob, channel, advance_s=1)  # before the deadline: nothing more to do
    assert not net.mempool
    net.tick(net.alice, channel, advance_s=101)
    net.mine()
    assert net.hub.payouts[channel] == (400, 600)
    assert net.bob.state(channel).phase is Phase.SETTLED
    assert net.bob.state(channel).final_balance_b == 600


def test_silent_peer_gets_a_unilateral_close_after_the_timeout() -> None:
    net = Network(ProtocolConfig(close_timeout_ms=5_000))
    channel = net.open_channel(deposit_a=1_000)
    net.apply(net.alice, Pay(channel, 300))
    net.deliver_all()
    net.apply(net.bob, RequestClose(channel, net.now_ms))
    net.queues[net.alice.address].clear()  # alice is gone
    net.tick(net.bob, channel, advance_ms=4_999)
    assert not net.mempool
    net.tick(net.bob, channel, advance_ms=1)
    assert [tx.kind for _, _, tx in net.mempool] == ["close"]
    net.mine()
    net.tick(net.bob, channel, advance_s=101 + 5)
    net.mine()
    assert net.hub.payouts[channel] == (700, 300)


def test_refused_close_falls_back_to_unilateral_at_once() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Pay(channel, 10))
    net.deliver_all()
    state = net.alice.state(channel)
    # Bob answers alice's close with a split that is not alice's view.
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.queues[net.bob.address].clear()
    sig = net.bob.key.sign_digest(b"\x00" * 32)
    from m2mpay.channel.messages import CloseReply

    outputs = net.apply(
        net.alice, Received(net.bob.address, CloseReply(channel, 1, 999, sig), net.now_ms)
    )
    codes = [o.code for o in outputs if isinstance(o, Rejected)]
    assert codes == [ErrorCode.CLOSE_MISMATCH]
    assert [o.tx.kind for o in outputs if isinstance(o, Submit)] == ["close"]
    assert state.sent_total == 10


def test_force_close_uses_newest_proofs() -> None:
    net = Network()
    channel = net.open_channel(deposit_a=1_000, deposit_b=1_000)
    net.apply(net.alice, Pay(channel, 300))
    net.apply(net.bob, Pay(channel, 100))
    net.deliver_all()
    outputs = net.apply(net.bob, ForceClose(channel))
    tx = next(o.tx for o in outputs if isinstance(o, Submit))
    assert isinstance(tx, CloseTx)
    assert (tx.transferred_a, tx.transferred_b) == (300, 100)
    net.mine()
    net.tick(net.alice, channel, advance_s=101)
    net.mine()
    assert net.hub.payouts[channel] == (800, 1_200)


# -- refusals: a peer's bad message changes nothing


def _payment(net: Network, channel: bytes, **change: object) -> PaymentMessage:
    state = net.alice.state(channel)
    total = state.sent_total + 5
    base = PaymentMessage(
        channel,
        CHAIN_ID,
        HUB,
        total,
        5,
        state.sent_seq + 1,
        net.alice.key.sign_digest(balance_proof_digest(DOMAIN, channel, total)),
    )
    return replace(base, **change)  # type: ignore[arg-type]


def _refused(
    net: Network, channel: bytes, message: object, sender: Address | None = None
) -> ErrorCode:
    before = net.bob.state(channel)
    outputs = net.apply(
        net.bob,
        Received(sender or net.alice.address, message, net.now_ms),  # type: ignore[arg-type]
    )
    assert net.bob.state(channel) is before, "a refused message must change nothing"
    rejected = [o for o in outputs if isinstance(o, Rejected)]
    assert len(rejected) == 1
    # The peer is told too, so a honest peer with a bug learns what went wrong.
    assert any(isinstance(o, Send) for o in outputs)
    return rejected[0].code


@pytest.fixture
def paid() -> tuple[Network, bytes]:
    net = Network()
    channel = net.open_channel(deposit_a=100)
    net.apply(net.alice, Pay(channel, 10))
    net.deliver_all()
    return net, channel


def test_bad_signature_is_refused(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    forged = PrivateKey.generate().sign_digest(balance_proof_digest(DOMAIN, channel, 15))
    assert (
        _refused(net, channel, _payment(net, channel, signature=forged)) is ErrorCode.BAD_SIGNATURE
    )


def test_replayed_payment_is_refused(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    state = net.alice.state(channel)
    replay = PaymentMessage(channel, CHAIN_ID, HUB, 10, 10, 1, state.sent_signature)  # type: ignore[arg-type]
    assert _refused(net, channel, replay) is ErrorCode.STALE_PROOF


def test_proof_for_another_channel_is_refused(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    other = net.open_channel(deposit_a=100, nonce=2)
    signed_for_other = net.alice.key.sign_digest(balance_proof_digest(DOMAIN, other, 15))
    message = _payment(net, channel, signature=signed_for_other)
    assert _refused(net, channel, message) is ErrorCode.BAD_SIGNATURE
    unknown = _payment(net, channel, channel_id=b"\x09" * 32)
    outputs = net.apply(net.bob, Received(net.alice.address, unknown, net.now_ms))
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.UNKNOWN_CHANNEL]


def test_proof_for_another_chain_or_contract_is_refused(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    other_chain = channel_domain(CHAIN_ID + 1, HUB)
    signed = net.alice.key.sign_digest(balance_proof_digest(other_chain, channel, 15))
    assert (
        _refused(net, channel, _payment(net, channel, chain_id=CHAIN_ID + 1, signature=signed))
        is ErrorCode.WRONG_CHAIN
    )
    # Claiming our chain does not help: the signature is bound to the other one.
    assert (
        _refused(net, channel, _payment(net, channel, signature=signed)) is ErrorCode.BAD_SIGNATURE
    )
    other_hub = Address("0x" + "ee" * 20)
    assert _refused(net, channel, _payment(net, channel, hub=other_hub)) is ErrorCode.WRONG_CONTRACT


def test_overdraft_is_refused(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    total = 101
    signature = net.alice.key.sign_digest(balance_proof_digest(DOMAIN, channel, total))
    message = _payment(net, channel, total=total, amount=91, signature=signature)
    assert _refused(net, channel, message) is ErrorCode.OVERDRAFT


def test_zero_and_mismatched_amounts_are_refused(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    assert _refused(net, channel, _payment(net, channel, amount=0)) is ErrorCode.NON_POSITIVE_AMOUNT
    assert _refused(net, channel, _payment(net, channel, amount=4)) is ErrorCode.AMOUNT_MISMATCH


def test_payment_from_a_stranger_is_refused(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    stranger = PrivateKey.generate().address
    assert _refused(net, channel, _payment(net, channel), sender=stranger) is ErrorCode.NOT_A_PARTY


def test_ack_for_more_than_was_sent_is_refused(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    before = net.alice.state(channel)
    outputs = net.apply(
        net.alice, Received(net.bob.address, PaymentAck(channel, 11, 1), net.now_ms)
    )
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.BAD_ACK]
    assert net.alice.state(channel) is before


def test_local_requests_are_checked_too(paid: tuple[Network, bytes]) -> None:
    net, channel = paid
    for amount, code in ((0, ErrorCode.NON_POSITIVE_AMOUNT), (91, ErrorCode.INSUFFICIENT_BALANCE)):
        outputs = net.apply(net.alice, Pay(channel, amount))
        assert [o.code for o in outputs if isinstance(o, Rejected)] == [code]
    outputs = net.apply(net.alice, Pay(b"\x07" * 32, 1))
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.UNKNOWN_CHANNEL]
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    outputs = net.apply(net.alice, Pay(channel, 1))
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.INVALID_PHASE]


# -- proposals


def _proposal(net: Network, **change: object) -> ChannelProposal:
    terms = ChannelTerms(CHAIN_ID, HUB, net.alice.address, net.bob.address, TOKEN, 100, 9, 50, 0)
    terms = replace(terms, **change)  # type: ignore[arg-type]
    return ChannelProposal(terms, net.now_ms + 10_000)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"chain_id": 1}, ErrorCode.WRONG_CHAIN),
        ({"hub": Address("0x" + "01" * 20)}, ErrorCode.WRONG_CONTRACT),
        ({"challenge_period": 1}, ErrorCode.INVALID_PROPOSAL),
        ({"deposit_a": 0}, ErrorCode.INVALID_PROPOSAL),
        ({"deposit_a": 2**256}, ErrorCode.INVALID_PROPOSAL),
        ({"deposit_b": 2**256}, ErrorCode.INVALID_PROPOSAL),
        ({"b": Address("0x" + "02" * 20)}, ErrorCode.NOT_A_PARTY),
    ],
)
def test_bad_proposals_are_refused(change: dict[str, object], code: ErrorCode) -> None:
    net = Network()
    outputs = net.apply(net.bob, Received(net.alice.address, _proposal(net, **change), net.now_ms))
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [code]
    assert net.bob.channels == {}


@pytest.mark.parametrize(
    "change",
    [{"peer_deposit": 2**256}, {"deposit": 2**256}, {"peer_deposit": -1}, {"peer": "self"}],
)
def test_a_proposal_that_could_never_open_is_refused_at_once(change: dict[str, object]) -> None:
    net = Network()
    if change.get("peer") == "self":
        change = {"peer": net.alice.address}
    propose = Propose(net.bob.address, TOKEN, 100, 0, 100, 7, net.now_ms, 10_000)
    outputs = net.apply(net.alice, replace(propose, **change))  # type: ignore[arg-type]
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.INVALID_PROPOSAL]
    assert not any(isinstance(o, Send) for o in outputs)
    assert net.alice.channels == {}


def test_rejected_proposal_ends_on_both_sides() -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 10, 0, 100, 3, net.now_ms, 1_000))
    net.deliver_all()
    channel = next(iter(net.bob.channels))
    net.apply(net.bob, Reject(channel, "not today"))
    net.deliver_all()
    assert net.alice.state(channel).phase is Phase.REJECTED
    assert net.bob.state(channel).phase is Phase.REJECTED
    assert not net.mempool


def test_unanswered_proposal_expires() -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 10, 0, 100, 3, net.now_ms, 1_000))
    channel = next(iter(net.alice.channels))
    net.tick(net.alice, channel, advance_ms=999)
    assert net.alice.state(channel).phase is Phase.PROPOSED
    net.tick(net.alice, channel, advance_ms=1)
    assert net.alice.state(channel).phase is Phase.EXPIRED
    assert ChannelExpired(channel) in net.alice.events


def test_failed_open_transaction_expires_the_channel() -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 10, 0, 100, 3, net.now_ms, 1_000))
    net.deliver_all()
    channel = next(iter(net.bob.channels))
    from m2mpay.channel.inputs import Accept, TxFailed

    net.apply(net.bob, Accept(channel))
    net.deliver_all()
    net.mempool.clear()
    net.apply(net.alice, TxFailed(channel, "open", "insufficient funds"))
    assert net.alice.state(channel).phase is Phase.EXPIRED


def test_open_seen_on_chain_for_an_unknown_channel_is_tracked() -> None:
    """Lost our records, but the chain says we are party b of a funded channel: track it."""
    net = Network()
    channel = net.open_channel(deposit_a=100)
    net.bob.channels.clear()
    from m2mpay.channel.inputs import ChainOpened

    terms = net.alice.state(channel).terms
    net.apply(
        net.bob,
        ChainOpened(
            channel, terms.a, terms.b, terms.asset, terms.challenge_period, terms.nonce, 100, 9
        ),
    )
    assert net.bob.state(channel).phase is Phase.OPEN
    assert net.bob.state(channel).deposit_a == 100


# -- crashes and resynchronisation


def test_payment_before_the_payee_sees_the_open_arrives_once_it_does() -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 1_000, 0, 100, 1, net.now_ms, 60_000))
    net.deliver_all()
    [channel] = net.bob.channels
    net.apply(net.bob, Accept(channel))
    net.deliver_all()
    late = net.mine(unseen_by=net.bob)  # bob's chain follower lags behind alice's
    net.apply(net.alice, Pay(channel, 250))
    net.deliver_all()
    assert net.bob.state(channel).phase is Phase.ACCEPTED
    assert net.bob.state(channel).received_total == 0  # refused: not open for bob yet
    for chain_input in late:
        net.apply(net.bob, chain_input)
    net.deliver_all()
    assert net.bob.state(channel).received_total == 250
    assert net.alice.state(channel).acked_total == 250
    received = [e for e in net.bob.events if isinstance(e, PaymentReceived)]
    assert [e.amount for e in received] == [250]


def test_payee_that_lost_payments_catches_up_on_resync() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Pay(channel, 10))
    net.deliver_all()
    durable = net.bob.state(channel)
    for _ in range(5):
        net.apply(net.alice, Pay(channel, 10))
    net.deliver(net.bob)
    net.bob.channels[channel] = durable  # bob crashed before these were durable
    net.queues[net.alice.address].clear()  # and its acks never left
    net.apply(net.alice, Resync(channel))
    net.apply(net.bob, Resync(channel))
    net.deliver_all()
    assert net.bob.state(channel).received_total == 60
    assert net.alice.state(channel).acked_total == 60
    received = [e for e in net.bob.events if isinstance(e, PaymentReceived)]
    assert sum(e.amount for e in received[-1:]) == 50  # one catch-up of the five payments


def test_payer_that_lost_its_own_proof_takes_it_back_on_resync() -> None:
    net = Network()
    channel = net.open_channel()
    durable = net.alice.state(channel)
    net.apply(net.alice, Pay(channel, 40))
    net.deliver(net.bob)
    net.alice.channels[channel] = durable  # alice crashed after sending, before logging
    net.queues[net.alice.address].clear()
    net.apply(net.bob, Resync(channel))
    net.deliver_all()
    state = net.alice.state(channel)
    assert (state.sent_total, state.sent_seq) == (40, 1)
    # Alice goes on from the total bob holds, so her next proof is accepted.
    net.apply(net.alice, Pay(channel, 1))
    net.deliver_all()
    assert net.bob.state(channel).received_total == 41


def test_resync_cannot_make_us_adopt_a_total_we_never_signed() -> None:
    net = Network()
    channel = net.open_channel()
    from m2mpay.channel.messages import ChannelSync

    total = 500
    bob_signed = net.bob.key.sign_digest(balance_proof_digest(DOMAIN, channel, total))
    sync = ChannelSync(channel, 0, 0, None, total, 7, bob_signed)
    outputs = net.apply(net.alice, Received(net.bob.address, sync, net.now_ms))
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.BAD_SIGNATURE]
    assert net.alice.state(channel).sent_total == 0


def test_replaying_the_log_rebuilds_identical_state_and_outputs() -> None:
    net = Network()
    channel = net.open_channel(deposit_a=500, deposit_b=500)
    for i in range(1, 20):
        net.apply(net.alice if i % 3 else net.bob, Pay(channel, i))
        if i % 5 == 0:
            net.deliver_all()
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.settle_everything()
    replayed = Network()
    state = None
    for inp in net.bob.log:
        from m2mpay.channel.machine import channel_key

        key = channel_key(replayed.bob.ctx, inp)
        state_before = replayed.bob.channels.get(key) if key else None
        new, _ = transition(replayed.bob.ctx, state_before, inp)
        if new is not None and key is not None:
            replayed.bob.channels[key] = new
            state = new
    assert state == net.bob.state(channel)
    assert state is not None
    assert state.phase is Phase.CLOSED


def test_outputs_carry_signatures_a_contract_accepts() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Pay(channel, 5))
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.deliver_all()
    tx = next(tx for _, _, tx in net.mempool if isinstance(tx, CooperativeCloseTx))
    assert (tx.balance_a, tx.balance_b) == (995, 5)
    net.mine()
    assert net.failed_tx == []


def test_messages_in_unknown_close_state_are_refused() -> None:
    net = Network()
    channel = net.open_channel()
    outputs = net.apply(
        net.bob, Received(net.alice.address, CloseProposal(channel, 1, 2), net.now_ms)
    )
    assert not any(isinstance(o, Rejected) for o in outputs)
    assert net.bob.state(channel).phase is Phase.CLOSING
