"""The channel machine at its edges, where a mutation audit found single-character bugs
slipping through: deadlines to the second and the millisecond, each rule for party b as
well as party a, and totals that go down while the sequence number still grows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from m2mpay.channel.context import ProtocolConfig
from m2mpay.channel.inputs import (
    ChainClosing,
    ForceClose,
    Pay,
    Propose,
    Received,
    RequestClose,
    TxFailed,
)
from m2mpay.channel.messages import (
    CloseProposal,
    CloseRefusal,
    CloseReply,
    PaymentAck,
    PaymentMessage,
)
from m2mpay.channel.outputs import (
    ChallengeTx,
    CloseTx,
    CooperativeCloseTx,
    ErrorCode,
    PaymentAcknowledged,
    PaymentReceived,
    PeerReportedError,
    Rejected,
    Send,
    SettleTx,
    Submit,
)
from m2mpay.channel.state import OnchainClose, Phase
from m2mpay.crypto import balance_proof_digest
from tests.channel.harness import CHAIN_ID, DOMAIN, HUB, TOKEN, Network, Party

GRACE_S = ProtocolConfig().settle_grace_s


def _sides(net: Network, payer: str) -> tuple[Party, Party]:
    return (net.alice, net.bob) if payer == "alice" else (net.bob, net.alice)


def _funded_both_ways() -> tuple[Network, bytes]:
    net = Network()
    return net, net.open_channel(deposit_a=1_000, deposit_b=1_000)


def _submitted(outputs: tuple[object, ...]) -> list[str]:
    return [o.tx.kind for o in outputs if isinstance(o, Submit)]


def _stale_close_unseen_by(
    net: Network, channel: bytes, cheat: Party, victim: Party, *, lose_challenge: bool = True
) -> None:
    """`cheat` paid `victim` 600 and closes claiming 100; `victim`'s chain follower lags,
    so the test decides when the victim learns of the close. The victim's challenge is
    then lost on its way to the chain, or left in the mempool."""
    for _ in range(6):
        net.apply(cheat, Pay(channel, 100))
    net.deliver_all()
    state = cheat.state(channel)
    own = (100, 0) if state.we_are_a else (0, 100)
    peer_total = state.received_total
    peer = (0, peer_total) if state.we_are_a else (peer_total, 0)
    totals = (own[0] + peer[0], own[1] + peer[1])
    proof = state.received_signature if peer_total else None
    tx = CloseTx(state.terms, state.deposit_a, state.deposit_b, *totals, proof)
    net.mempool.append((cheat, channel, tx))
    withheld = net.mine(unseen_by=victim)
    closing = [i for i in withheld if isinstance(i, ChainClosing)]
    assert len(closing) == 1
    net.apply(victim, closing[0])
    assert [tx.kind for _, _, tx in net.mempool] == ["challenge"]
    if lose_challenge:  # then only ticks can retry it
        net.mempool.clear()
        net.apply(victim, TxFailed(channel, "challenge", "dropped by the node"))


@pytest.mark.parametrize("cheater", ["alice", "bob"])
def test_a_defence_is_retried_at_the_deadline_second_but_not_after(cheater: str) -> None:
    net, channel = _funded_both_ways()
    cheat, victim = _sides(net, cheater)
    _stale_close_unseen_by(net, channel, cheat, victim)
    close = victim.state(channel).onchain_close
    assert close is not None
    net.hub.chain_time = close.deadline
    net.tick(victim, channel)
    assert [type(tx) for _, _, tx in net.mempool] == [ChallengeTx]
    net.mempool.clear()
    net.apply(victim, TxFailed(channel, "challenge", "dropped again"))
    net.hub.chain_time = close.deadline + 1
    net.tick(victim, channel)
    assert not any(isinstance(tx, ChallengeTx) for _, _, tx in net.mempool)


@pytest.mark.parametrize("cheater", ["alice", "bob"])
def test_a_mined_challenge_is_not_sent_again_before_the_follower_shows_it(cheater: str) -> None:
    """Between a challenge's receipt and its event the state still shows the stale total;
    a tick in that gap once sent the challenge again, to revert at the victim's cost."""
    net, channel = _funded_both_ways()
    cheat, victim = _sides(net, cheater)
    _stale_close_unseen_by(net, channel, cheat, victim, lose_challenge=False)
    withheld = net.mine(unseen_by=victim)
    assert [type(event).__name__ for event in withheld] == ["ChainChallenged"]
    net.tick(victim, channel)
    assert not net.mempool
    assert "challenge" in victim.state(channel).pending_tx
    for event in withheld:
        net.apply(victim, event)
    state = victim.state(channel)
    assert state.pending_tx == ()
    close = state.onchain_close
    assert close is not None
    assert (close.transferred_b if state.we_are_a else close.transferred_a) == 600
    net.tick(victim, channel)
    assert not net.mempool


def _force_closed_by_alice(watching: str) -> tuple[Network, bytes, Party, OnchainClose]:
    """A channel alice closed on chain, and the party `watching` with the close it saw."""
    net, channel = _funded_both_ways()
    party = net.alice if watching == "alice" else net.bob
    net.apply(net.alice, ForceClose(channel))
    net.mine()
    close = party.state(channel).onchain_close
    assert close is not None
    return net, channel, party, close


@pytest.mark.parametrize("settler", ["alice", "bob"])
def test_a_mined_settlement_is_not_sent_again_before_the_follower_shows_it(settler: str) -> None:
    net, channel, party, close = _force_closed_by_alice(settler)
    net.hub.chain_time = close.deadline + GRACE_S + 1
    net.tick(party, channel)
    assert [type(tx) for _, _, tx in net.mempool] == [SettleTx]
    withheld = net.mine(unseen_by=party)
    net.tick(party, channel)
    assert not net.mempool
    assert party.state(channel).phase is Phase.DISPUTED
    for event in withheld:
        net.apply(party, event)
    assert party.state(channel).phase is Phase.SETTLED
    assert party.state(channel).pending_tx == ()


@pytest.mark.parametrize(("settler", "grace"), [("alice", 0), ("bob", GRACE_S)])
def test_settle_waits_for_the_deadline_and_the_party_grace_to_the_second(
    settler: str, grace: int
) -> None:
    """Party a settles the second after the deadline; b waits its grace, so both rarely
    pay gas for one settlement."""
    net, channel, party, close = _force_closed_by_alice(settler)
    net.hub.chain_time = close.deadline + grace
    net.tick(party, channel)
    assert not net.mempool
    net.hub.chain_time += 1
    net.tick(party, channel)
    assert [type(tx) for _, _, tx in net.mempool] == [SettleTx]


@pytest.mark.parametrize("defender", ["alice", "bob"])
@pytest.mark.parametrize(("claimed", "challenged"), [(600, False), (599, True)])
def test_a_defence_is_sent_only_when_the_chain_holds_less_than_our_proof(
    defender: str, claimed: int, challenged: bool
) -> None:
    net, channel = _funded_both_ways()
    payer, payee = (net.bob, net.alice) if defender == "alice" else (net.alice, net.bob)
    net.apply(payer, Pay(channel, 600))
    net.deliver_all()
    state = payer.state(channel)
    totals = (claimed, 0) if state.we_are_a else (0, claimed)
    deadline = net.hub.chain_time + 100
    closer = payer.address
    outputs = net.apply(payee, ChainClosing(channel, closer, *totals, deadline, net.hub.block))
    assert (_submitted(outputs) == ["challenge"]) is challenged
    assert payee.state(channel).phase is Phase.DISPUTED


@pytest.mark.parametrize("side", ["alice", "bob"])
def test_a_proposal_expires_at_its_millisecond_on_either_side(side: str) -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 10, 0, 100, 3, net.now_ms, 1_000))
    net.deliver_all()
    party = net.alice if side == "alice" else net.bob
    channel = next(iter(party.channels))
    net.tick(party, channel, advance_ms=999)
    assert party.state(channel).phase is Phase.PROPOSED
    net.tick(party, channel, advance_ms=1)
    assert party.state(channel).phase is Phase.EXPIRED


@pytest.mark.parametrize(("late_ms", "refused"), [(999, False), (1_000, True)])
def test_a_proposal_arriving_at_its_expiry_is_refused(late_ms: int, refused: bool) -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 10, 0, 100, 3, net.now_ms, 1_000))
    net.now_ms += late_ms
    net.deliver(net.bob)
    assert (not net.bob.channels) is refused


@pytest.mark.parametrize(
    ("period", "ok"),
    [(9, False), (10, True), (31_536_000, True), (31_536_001, False)],
)
def test_challenge_period_bounds_are_inclusive(period: int, ok: bool) -> None:
    net = Network()
    outputs = net.apply(
        net.alice, Propose(net.bob.address, TOKEN, 10, 0, period, 3, net.now_ms, 1_000)
    )
    assert (not any(isinstance(o, Rejected) for o in outputs)) is ok
    net.deliver_all()
    assert bool(net.bob.channels) is ok


@pytest.mark.parametrize("payer_name", ["alice", "bob"])
def test_a_party_can_pay_its_whole_balance_and_not_a_unit_more(payer_name: str) -> None:
    net, channel = _funded_both_ways()
    payer, payee = _sides(net, payer_name)
    net.apply(payee, Pay(channel, 250))  # what the payer can spend includes what it got
    net.deliver_all()
    balance = payer.state(channel).my_balance
    assert balance == 1_250
    refused = net.apply(payer, Pay(channel, balance + 1))
    assert [o.code for o in refused if isinstance(o, Rejected)] == [ErrorCode.INSUFFICIENT_BALANCE]
    net.apply(payer, Pay(channel, balance))
    net.deliver_all()
    assert payee.state(channel).received_total == balance
    assert payer.state(channel).my_balance == 0


def _signed_payment(
    payer: Party, channel: bytes, total: int, amount: int, seq: int
) -> PaymentMessage:
    signature = payer.key.sign_digest(balance_proof_digest(DOMAIN, channel, total))
    return PaymentMessage(channel, CHAIN_ID, HUB, total, amount, seq, signature)


def _refusal(net: Network, payee: Party, payer: Party, message: object) -> list[ErrorCode]:
    channel = getattr(message, "channel_id")  # noqa: B009 (both message types carry it)
    before = payee.state(channel)
    outputs = net.apply(payee, Received(payer.address, message, net.now_ms))  # type: ignore[arg-type]
    assert payee.state(channel) is before, "a refused message must change nothing"
    return [o.code for o in outputs if isinstance(o, Rejected)]


@pytest.mark.parametrize("payer_name", ["alice", "bob"])
def test_a_payee_takes_the_payer_s_whole_holding_and_refuses_a_unit_more(
    payer_name: str,
) -> None:
    net, channel = _funded_both_ways()
    payer, payee = _sides(net, payer_name)
    net.apply(payee, Pay(channel, 30))  # the payer may spend what it received
    net.deliver_all()
    over = _signed_payment(payer, channel, 1_031, 1_031, 1)
    assert _refusal(net, payee, payer, over) == [ErrorCode.OVERDRAFT]
    exact = _signed_payment(payer, channel, 1_030, 1_030, 1)
    net.apply(payee, Received(payer.address, exact, net.now_ms))
    assert payee.state(channel).received_total == 1_030


@pytest.mark.parametrize("payer_name", ["alice", "bob"])
@pytest.mark.parametrize(
    ("total", "seq"),
    [(190, 3), (200, 3), (210, 2), (210, 1)],
    ids=["total-down-seq-up", "total-equal-seq-up", "seq-equal", "seq-down"],
)
def test_a_proof_must_raise_both_the_total_and_the_sequence(
    payer_name: str, total: int, seq: int
) -> None:
    net, channel = _funded_both_ways()
    payer, payee = _sides(net, payer_name)
    net.apply(payer, Pay(channel, 100))
    net.apply(payer, Pay(channel, 100))
    net.deliver_all()
    assert (payee.state(channel).received_total, payee.state(channel).received_seq) == (200, 2)
    message = _signed_payment(payer, channel, total, None, seq)  # type: ignore[arg-type]
    assert _refusal(net, payee, payer, message) == [ErrorCode.STALE_PROOF]


@pytest.mark.parametrize("payer_name", ["alice", "bob"])
def test_an_ack_may_not_claim_more_than_was_sent_in_total_or_in_sequence(
    payer_name: str,
) -> None:
    net, channel = _funded_both_ways()
    payer, payee = _sides(net, payer_name)
    net.apply(payer, Pay(channel, 100))
    net.apply(payer, Pay(channel, 100))
    net.deliver(payee)
    net.queues[payer.address].clear()  # the acks are lost
    for ack in (PaymentAck(channel, 201, 2), PaymentAck(channel, 200, 3)):
        assert _refusal(net, payer, payee, ack) == [ErrorCode.BAD_ACK]
    net.apply(payer, Received(payee.address, PaymentAck(channel, 200, 2), net.now_ms))
    assert (payer.state(channel).acked_total, payer.state(channel).acked_seq) == (200, 2)
    # The same ack again (a retransmission) is known: no second notification.
    acked = payer.state(channel)
    again = net.apply(payer, Received(payee.address, PaymentAck(channel, 200, 2), net.now_ms))
    assert again == ()
    assert payer.state(channel) is acked
    # An older ack arriving late must not move the acknowledged total back.
    net.apply(payer, Received(payee.address, PaymentAck(channel, 100, 1), net.now_ms))
    assert (payer.state(channel).acked_total, payer.state(channel).acked_seq) == (200, 2)


@pytest.mark.parametrize("asker", ["alice", "bob"])
def test_a_refused_close_goes_unilateral_with_the_newest_proofs_for_either_party(
    asker: str,
) -> None:
    net, channel = _funded_both_ways()
    net.apply(net.alice, Pay(channel, 300))
    net.apply(net.bob, Pay(channel, 100))
    net.deliver_all()
    party, peer = _sides(net, asker)
    net.apply(party, RequestClose(channel, net.now_ms))
    net.queues[peer.address].clear()
    refusal = CloseRefusal(channel, "busy")
    stranger = net.apply(party, Received(TOKEN, refusal, net.now_ms))
    assert not _submitted(stranger)  # only the peer can refuse our close
    outputs = net.apply(party, Received(peer.address, refusal, net.now_ms))
    assert PeerReportedError(channel, "close_refused", "busy") in party.events
    closes = [o.tx for o in outputs if isinstance(o, Submit)]
    assert len(closes) == 1
    assert isinstance(closes[0], CloseTx)
    assert (closes[0].transferred_a, closes[0].transferred_b) == (300, 100)
    assert closes[0].peer_proof == party.state(channel).received_signature


@pytest.mark.parametrize("payer_name", ["alice", "bob"])
def test_each_payment_is_credited_and_acknowledged_with_its_exact_amounts(
    payer_name: str,
) -> None:
    """The payee's node releases service on `PaymentReceived.amount`: a wrong figure
    there is money, even when the running total is right."""
    net, channel = _funded_both_ways()
    payer, payee = _sides(net, payer_name)
    net.apply(payer, Pay(channel, 100))
    net.apply(payer, Pay(channel, 30))
    net.deliver_all()
    received = [e for e in payee.events if isinstance(e, PaymentReceived)]
    assert received == [
        PaymentReceived(channel, 100, 100, 1),
        PaymentReceived(channel, 30, 130, 2),
    ]
    acked = [e for e in payer.events if isinstance(e, PaymentAcknowledged)]
    assert acked[-1] == PaymentAcknowledged(channel, 130, 2)
    assert (payer.state(channel).acked_total, payer.state(channel).acked_seq) == (130, 2)


@pytest.mark.parametrize("payer_name", ["alice", "bob"])
def test_a_payment_after_a_lost_one_credits_both(payer_name: str) -> None:
    """Proofs are cumulative: when payment 2 is lost, payment 3 carries its money too,
    and its `amount` (its own rise only) is not held against the larger credit."""
    net, channel = _funded_both_ways()
    payer, payee = _sides(net, payer_name)
    for amount in (10, 20, 40):
        net.apply(payer, Pay(channel, amount))
    queue = net.queues[payee.address]
    lost = [m for m in queue if isinstance(m[1], PaymentMessage) and m[1].seq == 2]
    assert len(lost) == 1
    queue.remove(lost[0])  # payment 2 never arrives
    net.deliver(payee)
    state = payee.state(channel)
    assert (state.received_total, state.received_seq) == (70, 3)
    received = [e for e in payee.events if isinstance(e, PaymentReceived)]
    assert received == [PaymentReceived(channel, 10, 10, 1), PaymentReceived(channel, 60, 70, 3)]


# -- cooperative close, asked by either party


def _paid_both_ways() -> tuple[Network, bytes]:
    net, channel = _funded_both_ways()
    net.apply(net.alice, Pay(channel, 300))
    net.apply(net.bob, Pay(channel, 100))
    net.deliver_all()
    return net, channel


@pytest.mark.parametrize("asker", ["alice", "bob"])
def test_a_cooperative_close_asked_by_either_party_pays_the_split(asker: str) -> None:
    net, channel = _paid_both_ways()
    party, peer = _sides(net, asker)
    net.apply(party, RequestClose(channel, net.now_ms))
    net.deliver_all()
    assert [type(tx) for _, _, tx in net.mempool] == [CooperativeCloseTx]
    net.mine()
    assert net.hub.payouts[channel] == (800, 1_200)
    assert party.state(channel).phase is Phase.CLOSED
    assert peer.state(channel).phase is Phase.CLOSED


@pytest.mark.parametrize("asker", ["alice", "bob"])
def test_a_close_reply_is_taken_once_and_only_signed_by_the_peer(asker: str) -> None:
    net, channel = _paid_both_ways()
    party, peer = _sides(net, asker)
    net.apply(party, RequestClose(channel, net.now_ms))
    net.deliver(peer)
    replies = [m for _, m in net.queues[party.address] if isinstance(m, CloseReply)]
    assert len(replies) == 1
    reply = replies[0]
    forged = replace(reply, signature=party.key.sign_digest(b"\x01" * 32))
    assert _refusal(net, party, peer, forged) == [ErrorCode.BAD_SIGNATURE]
    outputs = net.apply(party, Received(peer.address, reply, net.now_ms))
    assert _submitted(outputs) == ["cooperative_close"]
    again = net.apply(party, Received(peer.address, reply, net.now_ms))
    assert _submitted(again) == []


@pytest.mark.parametrize("asker", ["alice", "bob"])
def test_a_repeated_close_proposal_gets_the_split_already_signed(asker: str) -> None:
    net, channel = _paid_both_ways()
    party, peer = _sides(net, asker)
    net.apply(party, RequestClose(channel, net.now_ms))
    proposal = next(m for _, m in net.queues[peer.address] if isinstance(m, CloseProposal))
    first = net.apply(peer, Received(party.address, proposal, net.now_ms))
    second = net.apply(peer, Received(party.address, proposal, net.now_ms))
    sent = [o.message for o in (*first, *second) if isinstance(o, Send)]
    assert len(sent) == 2
    assert sent[0] == sent[1]
    assert isinstance(sent[0], CloseReply)
    assert (sent[0].balance_a, sent[0].balance_b) == (800, 1_200)


def test_a_payee_never_signs_a_second_split() -> None:
    """Two signed splits would let the peer submit whichever pays it more: a payment
    that lands after we signed does not change the split we repeat."""
    net, channel = _paid_both_ways()
    net.apply(net.alice, Pay(channel, 50))
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    queue = net.queues[net.bob.address]
    proposal = next(m for _, m in queue if isinstance(m, CloseProposal))
    payment = next(m for _, m in queue if isinstance(m, PaymentMessage))
    queue.clear()
    first = net.apply(net.bob, Received(net.alice.address, proposal, net.now_ms))
    net.apply(net.bob, Received(net.alice.address, payment, net.now_ms))
    assert net.bob.state(channel).received_total == 350  # the late payment counts
    second = net.apply(net.bob, Received(net.alice.address, proposal, net.now_ms))
    replies = [o.message for o in (*first, *second) if isinstance(o, Send)]
    replies = [m for m in replies if isinstance(m, CloseReply)]
    assert len(replies) == 2
    assert replies[1] == replies[0]
