"""Commitments: totals the payer signs for the application to carry (an HTTP 402
payment) rather than the wire. A resync never hands one in flight to the payee as a
wire payment (which would make its request stale and its payer pay again); the payee
gets it by its request, or with the payer's next payment; once the payee acknowledges
the payer's whole total, the wire carries the newest proof again."""

from __future__ import annotations

from m2mpay.channel.inputs import Commit, Pay, Received, Resync
from m2mpay.channel.messages import ChannelSync, PaymentMessage
from m2mpay.channel.outputs import Notify, PaymentReceived, Rejected, Send
from m2mpay.channel.state import WireProof
from tests.channel.harness import DOMAIN, Network


def _carried(net: Network, channel: bytes, amount: int) -> PaymentMessage:
    """The payer's newest proof as the application carries it to the payee."""
    state = net.alice.state(channel)
    assert state.sent_signature is not None
    return PaymentMessage(
        channel,
        DOMAIN.chain_id,
        DOMAIN.verifying_contract,
        state.sent_total,
        amount,
        state.sent_seq,
        state.sent_signature,
    )


def _resync(net: Network, channel: bytes) -> list[Send]:
    sent = [o for o in net.apply(net.alice, Resync(channel)) if isinstance(o, Send)]
    net.apply(net.bob, Resync(channel))
    net.deliver_all()
    return sent


def test_a_resync_does_not_hand_over_a_commitment_in_flight() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Pay(channel, 10))
    net.deliver_all()
    assert net.apply(net.alice, Commit(channel, 5)) == ()  # nothing on the wire
    state = net.alice.state(channel)
    assert (state.sent_total, state.sent_seq) == (15, 2)
    assert state.wire_proof is not None
    assert (state.wire_proof.total, state.wire_proof.seq) == (10, 1)
    [sync] = [s.message for s in _resync(net, channel) if isinstance(s.message, ChannelSync)]
    assert (sync.sent_total, sync.sent_seq) == (10, 1)  # the proof before the commitment
    assert net.bob.state(channel).received_total == 10  # not credited by the wire
    # The request arrives: the payee takes the commitment, whole, as its payment.
    outputs = net.apply(net.bob, Received(net.alice.address, _carried(net, channel, 5), 0))
    received = [o.event for o in outputs if isinstance(o, Notify)]
    assert [e.amount for e in received if isinstance(e, PaymentReceived)] == [5]
    net.deliver_all()  # its acknowledgement reaches the payer
    assert net.alice.state(channel).acked_total == 15
    assert net.alice.state(channel).wire_proof is None


def test_commitments_in_a_row_hold_the_proof_before_the_first() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Pay(channel, 10))
    net.deliver_all()
    for _ in range(3):
        net.apply(net.alice, Commit(channel, 5))
    assert net.alice.state(channel).wire_proof == WireProof(
        10, 1, net.bob.state(channel).received_signature
    )
    # Only the newest is carried: the payee credits the three at once.
    outputs = net.apply(net.bob, Received(net.alice.address, _carried(net, channel, 15), 0))
    assert not [o for o in outputs if isinstance(o, Rejected)]
    assert net.bob.state(channel).received_total == 25


def test_a_commitment_the_payee_took_but_whose_ack_was_lost_is_released_by_a_resync() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Commit(channel, 7))
    net.apply(net.bob, Received(net.alice.address, _carried(net, channel, 7), 0))
    net.queues.clear()  # the payee's acknowledgement is lost
    assert net.alice.state(channel).wire_proof is not None
    _resync(net, channel)
    state = net.alice.state(channel)
    assert (state.acked_total, state.wire_proof) == (7, None)
    assert net.bob.state(channel).received_total == 7


def test_a_payment_after_a_commitment_carries_it_over_the_wire() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Commit(channel, 5))  # its request never arrives
    net.apply(net.alice, Pay(channel, 10))
    assert net.alice.state(channel).wire_proof is None
    net.deliver_all()
    assert net.bob.state(channel).received_total == 15  # a signed total is paid
    assert net.alice.state(channel).acked_total == 15


def test_a_commitment_before_any_payment_holds_back_nothing_to_send() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Commit(channel, 5))
    assert net.alice.state(channel).wire_proof == WireProof(0, 0, None)
    sent = _resync(net, channel)
    assert not [s for s in sent if isinstance(s.message, PaymentMessage)]
    assert net.bob.state(channel).received_total == 0
    assert net.alice.state(channel).sent_total == 5  # still the payer's to deliver
