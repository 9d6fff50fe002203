"""The channel machine where a second mutation audit found rules no test pinned: refusals
of a peer's messages that must leave the state object as it was and name the channel
(to us and to the peer), deposits at their exact bounds, who may accept and resend what,
what the chain's events record, failed and mined transactions, a payment that arrives
during a dispute, and a resync's catch-up and acknowledgement to the unit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from m2mpay.channel.inputs import (
    Accept,
    ChainChallenged,
    ChainClosing,
    ChainDeposited,
    ChainOpened,
    ChainSettled,
    ForceClose,
    Input,
    Pay,
    Propose,
    Received,
    Reject,
    RequestClose,
    Resync,
    TopUp,
    TxFailed,
    TxMined,
)
from m2mpay.channel.machine import channel_key, is_refusal, transition
from m2mpay.channel.messages import (
    ChannelAccept,
    ChannelProposal,
    ChannelReject,
    ChannelSync,
    CloseProposal,
    CloseReply,
    PaymentAck,
    PaymentMessage,
    PeerError,
)
from m2mpay.channel.outputs import (
    ChallengeTx,
    ChannelDefended,
    ChannelExpired,
    ChannelOpened,
    CloseStarted,
    CloseTx,
    DepositTx,
    ErrorCode,
    Notify,
    Output,
    PaymentAcknowledged,
    PaymentReceived,
    PeerReportedError,
    Rejected,
    Send,
    Submit,
    TransactionFailed,
)
from m2mpay.channel.state import ChannelState, Phase
from m2mpay.crypto import UINT256_MAX, ZERO_ADDRESS, balance_proof_digest
from tests.channel.harness import CHAIN_ID, DOMAIN, HUB, TOKEN, Network, Party

UNKNOWN = b"\x77" * 32


def _refusal(party: Party, inp: Input) -> list[tuple[ErrorCode, bytes | None]]:
    """A refused input: the state object stays as it was, the engine sees a refusal, and
    the error told to a peer names the same channel as ours."""
    key = channel_key(party.ctx, inp)
    before = party.channels.get(key) if key is not None else None
    after, outputs = transition(party.ctx, before, inp)
    assert after is before
    assert is_refusal(before, after, outputs)
    rejected = [(o.code, o.channel_id) for o in outputs if isinstance(o, Rejected)]
    told = [o.message for o in outputs if isinstance(o, Send)]
    if isinstance(inp, Received) and not isinstance(inp.message, PeerError):
        assert [(m.code, m.channel_id) for m in told if isinstance(m, PeerError)] == [
            (code.value, channel) for code, channel in rejected
        ]
    return rejected


def _open(deposit_b: int = 1_000) -> tuple[Network, bytes]:
    net = Network()
    return net, net.open_channel(deposit_a=1_000, deposit_b=deposit_b)


def _submitted(outputs: tuple[Output, ...]) -> list[object]:
    return [o.tx for o in outputs if isinstance(o, Submit)]


def _events(outputs: tuple[Output, ...]) -> list[object]:
    return [o.event for o in outputs if isinstance(o, Notify)]


def _sent(outputs: tuple[Output, ...]) -> list[object]:
    return [o.message for o in outputs if isinstance(o, Send)]


def _payment_sent(outputs: tuple[Output, ...]) -> PaymentMessage:
    payments = [m for m in _sent(outputs) if isinstance(m, PaymentMessage)]
    assert len(payments) == 1
    return payments[0]


def _proposed(net: Network) -> tuple[bytes, ChannelProposal]:
    """Alice proposes; returns the channel and the proposal as bob would receive it."""
    propose = Propose(net.bob.address, TOKEN, 1_000, 0, 100, 7, net.now_ms, 60_000)
    net.apply(net.alice, propose)
    sender, message = net.queues[net.bob.address].popleft()
    assert sender == net.alice.address
    assert isinstance(message, ChannelProposal)
    return message.terms.channel_id, message


# -- proposals


def test_a_proposal_refused_locally_names_the_channel_it_would_have_been() -> None:
    net = Network()
    propose = Propose(net.bob.address, TOKEN, 0, 0, 100, 7, net.now_ms, 60_000)
    channel = channel_key(net.alice.ctx, propose)
    assert channel is not None
    assert _refusal(net.alice, propose) == [(ErrorCode.INVALID_PROPOSAL, channel)]
    to_nobody = replace(propose, peer=ZERO_ADDRESS, deposit=1)
    assert _refusal(net.alice, to_nobody) == [
        (ErrorCode.INVALID_PROPOSAL, channel_key(net.alice.ctx, to_nobody))
    ]
    channel, _ = _proposed(net)
    again = replace(propose, deposit=1_000)
    assert _refusal(net.alice, again) == [(ErrorCode.DUPLICATE_CHANNEL, channel)]


@pytest.mark.parametrize(
    ("deposit", "refused"),
    [(1, False), (UINT256_MAX, False), (UINT256_MAX + 1, True), (0, True)],
    ids=["one-unit", "uint256-max", "past-uint256", "zero"],
)
def test_party_a_deposits_at_least_one_unit_and_at_most_uint256_max(
    deposit: int, refused: bool
) -> None:
    net = Network()
    propose = Propose(net.bob.address, TOKEN, deposit, 0, 100, 7, net.now_ms, 60_000)
    state, outputs = transition(net.alice.ctx, None, propose)
    if refused:
        assert state is None
        assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.INVALID_PROPOSAL]
    else:
        assert state is not None
        assert state.terms.deposit_a == deposit
        assert [type(m) for m in _sent(outputs)] == [ChannelProposal]


def test_a_resent_proposal_is_ignored_and_other_terms_under_its_id_refused() -> None:
    net = Network()
    channel, proposal = _proposed(net)
    received = Received(net.alice.address, proposal, net.now_ms)
    net.apply(net.bob, received)
    state = net.bob.state(channel)
    assert transition(net.bob.ctx, state, received) == (state, ())
    # The id does not cover the deposits: another split under it is a different proposal.
    other = replace(proposal, terms=replace(proposal.terms, deposit_a=999))
    assert other.terms.channel_id == channel
    assert _refusal(net.bob, Received(net.alice.address, other, net.now_ms)) == [
        (ErrorCode.DUPLICATE_CHANNEL, channel)
    ]


def test_a_proposal_from_the_zero_address_is_refused() -> None:
    net = Network()
    _, proposal = _proposed(net)
    terms = replace(proposal.terms, a=ZERO_ADDRESS)
    forged = Received(ZERO_ADDRESS, replace(proposal, terms=terms), net.now_ms)
    assert _refusal(net.bob, forged) == [(ErrorCode.INVALID_PROPOSAL, terms.channel_id)]


def test_only_party_b_accepts_or_rejects_and_only_a_proposal() -> None:
    net = Network()
    channel, proposal = _proposed(net)
    for inp in (Accept(channel), Reject(channel, "no")):
        assert _refusal(net.alice, inp) == [(ErrorCode.INVALID_PHASE, channel)]
    net.apply(net.bob, Received(net.alice.address, proposal, net.now_ms))
    # An accept reaching b (who has not accepted) is nobody's to send: it changes nothing.
    accept = Received(net.alice.address, ChannelAccept(channel), net.now_ms)
    state = net.bob.state(channel)
    assert transition(net.bob.ctx, state, accept) == (state, ())


@pytest.mark.parametrize(
    "message",
    [
        ChannelAccept(UNKNOWN),
        ChannelReject(UNKNOWN, "no"),
        CloseProposal(UNKNOWN, 1, 1),
        PaymentAck(UNKNOWN, 1, 1),
        ChannelSync(UNKNOWN, 0, 0, None, 0, 0, None),
    ],
    ids=["accept", "reject", "close-proposal", "ack", "sync"],
)
def test_a_peer_message_about_an_unknown_channel_is_refused(message: object) -> None:
    net, _ = _open()
    received = Received(net.bob.address, message, net.now_ms)  # type: ignore[arg-type]
    assert _refusal(net.alice, received) == [(ErrorCode.UNKNOWN_CHANNEL, UNKNOWN)]


def test_a_close_reply_about_an_unknown_channel_is_refused() -> None:
    net, channel = _open()
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.deliver(net.bob)
    reply = next(m for _, m in net.queues[net.alice.address] if isinstance(m, CloseReply))
    received = Received(net.bob.address, replace(reply, channel_id=UNKNOWN), net.now_ms)
    assert _refusal(net.alice, received) == [(ErrorCode.UNKNOWN_CHANNEL, UNKNOWN)]
    # The same reply under the right id, signed by someone else, is refused too.
    forged = replace(reply, signature=net.alice.key.sign_digest(b"\x01" * 32))
    received = Received(net.bob.address, forged, net.now_ms)
    assert _refusal(net.alice, received) == [(ErrorCode.BAD_SIGNATURE, channel)]


def test_a_peer_message_from_a_stranger_or_in_the_wrong_phase_is_refused() -> None:
    net, channel = _open()
    stranger = Received(net.alice.address, PaymentAck(channel, 0, 0), net.now_ms)
    assert _refusal(net.alice, stranger) == [(ErrorCode.NOT_A_PARTY, channel)]
    reject = Received(net.bob.address, ChannelReject(channel, "too late"), net.now_ms)
    assert _refusal(net.alice, reject) == [(ErrorCode.INVALID_PHASE, channel)]


# -- payments refused, each leaving the state as it was


def _payment(
    net: Network, payer: Party, channel: bytes, total: int, amount: int, seq: int
) -> PaymentMessage:
    signature = payer.key.sign_digest(balance_proof_digest(DOMAIN, channel, total))
    return PaymentMessage(channel, CHAIN_ID, HUB, total, amount, seq, signature)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: replace(p, chain_id=CHAIN_ID + 1), ErrorCode.WRONG_CHAIN),
        (lambda p: replace(p, hub=TOKEN), ErrorCode.WRONG_CONTRACT),
        (lambda p: replace(p, amount=0), ErrorCode.NON_POSITIVE_AMOUNT),
        (lambda p: replace(p, amount=p.amount + 1), ErrorCode.AMOUNT_MISMATCH),
        (lambda p: replace(p, total=100, amount=100, seq=1), ErrorCode.STALE_PROOF),
        (lambda p: replace(p, signature=p.signature[::-1]), ErrorCode.BAD_SIGNATURE),
    ],
    ids=["chain", "hub", "zero", "amount", "stale", "signature"],
)
def test_a_refused_payment_leaves_the_payee_as_it_was(make: object, code: ErrorCode) -> None:
    net, channel = _open()
    net.apply(net.alice, Pay(channel, 100))
    net.deliver_all()
    payment = _payment(net, net.alice, channel, 150, 50, 2)
    bad = make(payment)  # type: ignore[operator]
    assert _refusal(net.bob, Received(net.alice.address, bad, net.now_ms)) == [(code, channel)]


def test_an_overdraft_and_an_ack_beyond_what_was_sent_leave_the_state_as_it_was() -> None:
    net, channel = _open(deposit_b=0)
    overdraft = _payment(net, net.bob, channel, 1, 1, 1)  # b deposited nothing
    assert _refusal(net.alice, Received(net.bob.address, overdraft, net.now_ms)) == [
        (ErrorCode.OVERDRAFT, channel)
    ]
    ack = PaymentAck(channel, 1, 1)
    assert _refusal(net.alice, Received(net.bob.address, ack, net.now_ms)) == [
        (ErrorCode.BAD_ACK, channel)
    ]


# -- opening on chain


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_an_open_seen_on_chain_for_an_untracked_channel_is_tracked_for_either_party(
    who: str,
) -> None:
    net = Network()
    party = net.alice if who == "alice" else net.bob
    opened = ChainOpened(UNKNOWN, net.alice.address, net.bob.address, TOKEN, 100, 9, 500, 1)
    outputs = net.apply(party, opened)
    state = party.state(UNKNOWN)
    assert state.we_are_a is (who == "alice")
    assert state.phase is Phase.OPEN
    assert (state.terms.deposit_a, state.terms.deposit_b) == (500, 0)
    assert (state.deposit_a, state.deposit_b) == (500, 0)
    assert _events(outputs) == [ChannelOpened(UNKNOWN, 500, 0)]
    assert _submitted(outputs) == []  # b owes no deposit it never agreed to


@pytest.mark.parametrize("deposit_b", [0, 1])
def test_party_b_deposits_its_agreed_share_once_open_and_nothing_if_none(deposit_b: int) -> None:
    net = Network()
    net.apply(
        net.alice,
        Propose(net.bob.address, TOKEN, 1_000, deposit_b, 100, 1, net.now_ms, 60_000),
    )
    net.deliver_all()
    channel = next(iter(net.bob.channels))
    net.apply(net.bob, Accept(channel))
    net.deliver_all()
    opened = [i for i in net.mine(unseen_by=net.bob) if isinstance(i, ChainOpened)]
    outputs = net.apply(net.bob, opened[0])
    deposits = [tx for tx in _submitted(outputs) if isinstance(tx, DepositTx)]
    assert [(tx.participant, tx.amount) for tx in deposits] == (
        [(net.bob.address, 1)] if deposit_b else []
    )


def test_only_our_own_deposit_seen_on_chain_ends_our_pending_deposit() -> None:
    net, channel = _open()
    net.apply(net.bob, TopUp(channel, 1))  # the smallest top-up is one
    assert "deposit" in net.bob.state(channel).pending_tx
    state = net.bob.state(channel)
    by_peer = ChainDeposited(channel, net.alice.address, 1_001, 1_000, 9)
    net.apply(net.bob, by_peer)
    assert "deposit" in net.bob.state(channel).pending_tx
    ours = ChainDeposited(channel, net.bob.address, 1_001, 1_001, 10)
    net.apply(net.bob, ours)
    assert "deposit" not in net.bob.state(channel).pending_tx
    assert state.deposit_b == 1_000
    assert net.bob.state(channel).deposit_b == 1_001


def test_a_receipt_from_an_old_log_leaves_the_transaction_pending_until_its_event() -> None:
    net, channel = _open()
    net.apply(net.alice, TopUp(channel, 5))
    state = net.alice.state(channel)
    assert net.apply(net.alice, TxMined(channel, "deposit")) == ()
    assert net.alice.state(channel) is state
    net.mine()
    assert net.alice.state(channel).pending_tx == ()
    assert net.alice.state(channel).deposit_a == state.deposit_a + 5


# -- closing


@pytest.mark.parametrize("asker", ["alice", "bob"])
def test_a_cooperative_close_records_who_asked_on_both_sides(asker: str) -> None:
    net, channel = _open()
    party = net.alice if asker == "alice" else net.bob
    other = net.other(party)
    outputs = net.apply(party, RequestClose(channel, net.now_ms))
    assert CloseStarted(channel, True) in _events(outputs)
    close = party.state(channel).close
    assert close is not None
    assert close.initiator
    net.deliver(other)
    close = other.state(channel).close
    assert close is not None
    assert not close.initiator
    assert CloseStarted(channel, False) in other.events


def test_an_initiator_records_the_split_it_signed_when_it_submits_the_close() -> None:
    net, channel = _open()
    net.apply(net.alice, Pay(channel, 100))
    net.deliver_all()
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.deliver(net.bob)
    net.deliver(net.alice)
    close = net.alice.state(channel).close
    assert close is not None
    assert (close.balance_a, close.balance_b) == (900, 1_100)
    assert close.signature is not None
    # A repeated proposal from bob is answered with that same signature, not a new split.
    outputs = net.apply(
        net.alice, Received(net.bob.address, CloseProposal(channel, 900, 1_100), net.now_ms)
    )
    replies = [m for m in _sent(outputs) if isinstance(m, CloseReply)]
    assert [r.signature for r in replies] == [close.signature]


def test_a_mismatched_close_reply_is_refused_by_channel_and_goes_unilateral() -> None:
    net, channel = _open()
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.deliver(net.bob)
    reply = next(m for _, m in net.queues[net.alice.address] if isinstance(m, CloseReply))
    net.queues[net.alice.address].clear()
    wrong = replace(reply, balance_a=reply.balance_a - 1, balance_b=reply.balance_b + 1)
    outputs = net.apply(net.alice, Received(net.bob.address, wrong, net.now_ms))
    assert [(o.code, o.channel_id) for o in outputs if isinstance(o, Rejected)] == [
        (ErrorCode.CLOSE_MISMATCH, channel)
    ]
    assert [type(tx) for tx in _submitted(outputs)] == [CloseTx]


def test_a_responder_that_signed_one_split_refuses_a_reply_with_another() -> None:
    """Both asked at once; bob signed a split, then took a late payment: a reply stating
    the new split (which bob never signed) is refused, though it is bob's view now."""
    net, channel = _open()
    net.apply(net.alice, Pay(channel, 100))
    net.deliver_all()
    late = _payment_sent(net.apply(net.alice, Pay(channel, 50)))
    net.queues[net.bob.address].clear()
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.deliver(net.bob)  # bob signs 900 / 1100 and is now closing
    close = net.bob.state(channel).close
    assert close is not None
    assert (close.balance_a, close.balance_b) == (900, 1_100)
    net.apply(net.bob, Received(net.alice.address, late, net.now_ms))  # 850 / 1150 now
    assert net.bob.state(channel).split() == (850, 1_150)
    signature = net.alice.key.sign_digest(b"\x00" * 32)
    reply = CloseReply(channel, 850, 1_150, signature)
    outputs = net.apply(net.bob, Received(net.alice.address, reply, net.now_ms))
    assert [o.code for o in outputs if isinstance(o, Rejected)] == [ErrorCode.CLOSE_MISMATCH]


def test_a_second_force_close_submits_nothing_while_the_first_is_pending() -> None:
    net, channel = _open()
    first = net.apply(net.alice, ForceClose(channel))
    assert [type(tx) for tx in _submitted(first)] == [CloseTx]
    assert _submitted(net.apply(net.alice, ForceClose(channel))) == []


def test_a_failed_cooperative_close_goes_unilateral_and_a_failed_deposit_does_not() -> None:
    net, channel = _open()
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.mempool.clear()
    outputs = net.apply(net.alice, TxFailed(channel, "deposit", "out of gas"))
    assert _events(outputs) == [TransactionFailed(channel, "deposit", "out of gas")]
    assert _submitted(outputs) == []
    outputs = net.apply(net.alice, TxFailed(channel, "cooperative_close", "reverted"))
    assert _events(outputs) == [TransactionFailed(channel, "cooperative_close", "reverted")]
    assert [type(tx) for tx in _submitted(outputs)] == [CloseTx]
    # Open, not closing: a failed cooperative close (a stale one) does not close.
    net, channel = _open()
    outputs = net.apply(net.alice, TxFailed(channel, "cooperative_close", "stale"))
    assert _submitted(outputs) == []


def test_a_failed_open_expires_the_channel_and_says_both() -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 1_000, 0, 100, 1, net.now_ms, 60_000))
    net.deliver_all()
    channel = next(iter(net.bob.channels))
    net.apply(net.bob, Accept(channel))
    net.deliver_all()
    net.mempool.clear()
    outputs = net.apply(net.alice, TxFailed(channel, "open", "no funds"))
    assert _events(outputs) == [
        TransactionFailed(channel, "open", "no funds"),
        ChannelExpired(channel),
    ]


@pytest.mark.parametrize("challenged", ["alice", "bob"])
def test_a_challenge_on_chain_records_both_totals_and_the_new_deadline(challenged: str) -> None:
    net, channel = _open()
    net.apply(net.alice, ForceClose(channel))
    net.mine()
    state = net.alice.state(channel)
    close = state.onchain_close
    assert close is not None
    totals = (7, close.transferred_b) if challenged == "alice" else (close.transferred_a, 7)
    outputs = net.apply(net.alice, ChainChallenged(channel, *totals, close.deadline + 50, 99))
    new = net.alice.state(channel).onchain_close
    assert new is not None
    assert (new.transferred_a, new.transferred_b, new.deadline) == (*totals, close.deadline + 50)
    assert outputs == ()


def test_a_settlement_records_both_final_balances_and_ends_every_pending_transaction() -> None:
    net, channel = _open()
    net.apply(net.alice, ForceClose(channel))
    assert "close" in net.alice.state(channel).pending_tx
    net.apply(net.alice, ChainSettled(channel, 400, 1_600, False, 50))
    state = net.alice.state(channel)
    assert (state.final_balance_a, state.final_balance_b) == (400, 1_600)
    assert state.pending_tx == ()


@pytest.mark.parametrize("payee", ["alice", "bob"])
def test_a_payment_that_arrives_during_a_dispute_is_credited_and_defended(payee: str) -> None:
    net, channel = _open()
    receiver = net.alice if payee == "alice" else net.bob
    payer = net.other(receiver)
    net.apply(payer, Pay(channel, 100))
    net.deliver_all()
    late = _payment_sent(net.apply(payer, Pay(channel, 50)))
    net.queues.clear()
    # The payer closes on chain claiming only the 100 the receiver has seen.
    totals = (100, 0) if payer is net.alice else (0, 100)
    deadline = net.hub.chain_time + 100
    closing = ChainClosing(channel, payer.address, *totals, deadline, net.hub.block)
    assert _submitted(net.apply(receiver, closing)) == []  # nothing newer to defend with
    assert receiver.state(channel).phase is Phase.DISPUTED
    outputs = net.apply(receiver, Received(payer.address, late, net.now_ms))
    assert PaymentAck(channel, 150, 2) in _sent(outputs)
    assert PaymentReceived(channel, 50, 150, 2) in _events(outputs)
    assert ChannelDefended(channel, payer.address, 150) in _events(outputs)
    challenges = [tx for tx in _submitted(outputs) if isinstance(tx, ChallengeTx)]
    assert [tx.transferred for tx in challenges] == [150]


# -- resync


def test_a_resync_resends_what_each_party_last_said_in_each_phase() -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 1_000, 0, 100, 1, net.now_ms, 60_000))
    net.deliver_all()
    channel = next(iter(net.bob.channels))
    assert [type(m) for m in _sent(net.apply(net.alice, Resync(channel)))] == [ChannelProposal]
    assert _sent(net.apply(net.bob, Resync(channel))) == []  # b has nothing to resend yet
    net.queues.clear()
    net.apply(net.bob, Accept(channel))
    assert [type(m) for m in _sent(net.apply(net.bob, Resync(channel)))] == [ChannelAccept]
    net.deliver_all()
    assert _sent(net.apply(net.alice, Resync(channel))) == []  # accepted, not yet open
    net.mine()
    net.queues.clear()
    assert [type(m) for m in _sent(net.apply(net.alice, Resync(channel)))] == [ChannelSync]


def test_a_sync_before_the_open_is_seen_is_ignored_and_an_empty_one_after_changes_nothing() -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 1_000, 0, 100, 1, net.now_ms, 60_000))
    net.deliver_all()
    channel = next(iter(net.bob.channels))
    net.apply(net.bob, Accept(channel))
    net.deliver_all()
    empty = Received(net.alice.address, ChannelSync(channel, 0, 0, None, 0, 0, None), net.now_ms)
    state = net.bob.state(channel)
    assert transition(net.bob.ctx, state, empty) == (state, ())
    net.mine()
    net.mine()
    state = net.bob.state(channel)
    assert transition(net.bob.ctx, state, empty) == (state, ())


def _sync_after_lost_messages(net: Network, channel: bytes) -> ChannelSync:
    """Alice paid bob 100 then 50 (bob saw only the first, and his ack of it was lost),
    bob paid alice 30 (lost)."""
    net.apply(net.alice, Pay(channel, 100))
    net.deliver(net.bob)
    net.queues.clear()
    net.apply(net.alice, Pay(channel, 50))
    net.apply(net.bob, Pay(channel, 30))
    net.queues.clear()
    sync = [m for m in _sent(net.apply(net.bob, Resync(channel))) if isinstance(m, ChannelSync)]
    assert len(sync) == 1
    return sync[0]


def test_a_sync_takes_the_peer_s_proof_and_catches_up_ours_by_the_exact_rise() -> None:
    net, channel = _open()
    sync = _sync_after_lost_messages(net, channel)
    assert sync.sent_signature is not None  # the sync carries bob's proof
    assert (sync.received_total, sync.received_seq) == (100, 1)
    outputs = net.apply(net.alice, Received(net.bob.address, sync, net.now_ms))
    assert net.alice.state(channel).received_total == 30
    assert PaymentAck(channel, 30, 1) in _sent(outputs)
    catch_up = [m for m in _sent(outputs) if isinstance(m, PaymentMessage)]
    assert [(m.total, m.amount, m.seq) for m in catch_up] == [(150, 50, 2)]
    # Bob acknowledged alice's first payment in the sync: alice records that, to the unit.
    state = net.alice.state(channel)
    assert (state.acked_total, state.acked_seq) == (100, 1)
    assert PaymentAcknowledged(channel, 100, 1) in _events(outputs)


def test_a_sync_acknowledging_our_whole_total_is_recorded_once() -> None:
    net, channel = _open()
    net.apply(net.alice, Pay(channel, 100))
    net.deliver(net.bob)
    net.queues.clear()  # bob's ack is lost
    sync = next(m for m in _sent(net.apply(net.bob, Resync(channel))) if isinstance(m, ChannelSync))
    received = Received(net.bob.address, sync, net.now_ms)
    outputs = net.apply(net.alice, received)
    state = net.alice.state(channel)
    assert (state.acked_total, state.acked_seq) == (100, 1)
    assert _events(outputs) == [PaymentAcknowledged(channel, 100, 1)]
    assert not any(isinstance(m, PaymentMessage) for m in _sent(outputs))  # nothing to resend
    assert net.apply(net.alice, received) == ()


def test_a_party_that_lost_its_record_takes_back_its_own_newest_proof() -> None:
    net, channel = _open()
    net.apply(net.alice, Pay(channel, 100))
    net.deliver_all()
    signature = net.alice.state(channel).sent_signature
    assert signature is not None
    # Alice crashed before her payment was durable: her state says she never paid.
    net.alice.channels[channel] = replace(
        net.alice.state(channel),
        sent_total=0,
        sent_seq=0,
        sent_signature=None,
        acked_total=0,
        acked_seq=0,
    )
    sync = next(m for m in _sent(net.apply(net.bob, Resync(channel))) if isinstance(m, ChannelSync))
    net.apply(net.alice, Received(net.bob.address, sync, net.now_ms))
    state = net.alice.state(channel)
    assert (state.sent_total, state.sent_seq, state.sent_signature) == (100, 1, signature)
    # And it can pay on from there: the next proof rises from 100.
    outputs = net.apply(net.alice, Pay(channel, 10))
    assert [(m.total, m.seq) for m in _sent(outputs) if isinstance(m, PaymentMessage)] == [(110, 2)]


# -- errors and refusals as the engine sees them


def test_a_peer_s_error_is_reported_under_its_channel_and_a_stranger_s_ignored() -> None:
    net, channel = _open()
    error = PeerError("bad_signature", "nope", channel)
    outputs = net.apply(net.alice, Received(net.bob.address, error, net.now_ms))
    assert _events(outputs) == [PeerReportedError(channel, "bad_signature", "nope")]
    state = net.alice.state(channel)
    assert transition(net.alice.ctx, state, Received(net.alice.address, error, 0)) == (state, ())


def test_an_input_that_changes_nothing_and_says_nothing_is_not_a_refusal() -> None:
    net, channel = _open()
    state: ChannelState = net.alice.state(channel)
    assert not is_refusal(state, state, ())
    rejected = Rejected(ErrorCode.INVALID_PHASE, "no", channel)
    closing = Send(net.bob.address, CloseReply(channel, 1, 1, b"\x00" * 65))  # type: ignore[arg-type]
    assert not is_refusal(state, state, (rejected, closing))
    assert is_refusal(state, state, (rejected,))
