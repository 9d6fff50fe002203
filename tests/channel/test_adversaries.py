"""Peers that cheat in ways a single refusal test does not show: each case names the
bound that holds (what the victim can lose) and what the victim sees.

Replays, forged and foreign proofs, overdrafts, strangers and reports beyond the
window are in test_machine.py and tests/stream; a silent peer, a refused close and a
stale unilateral close there too; a watcher that censors in tests/watcher."""

from __future__ import annotations

from dataclasses import replace

import coincurve
from coincurve._libsecp256k1 import ffi  # type: ignore[import-not-found]

from m2mpay.channel.inputs import Accept, Pay, Propose, Received, RequestClose, TopUp
from m2mpay.channel.messages import PaymentMessage
from m2mpay.channel.outputs import ChannelOpened, ErrorCode, OpenTx, Rejected, Submit
from m2mpay.channel.state import Phase
from m2mpay.crypto import Signature, balance_proof_digest, recover_signer
from tests.channel.harness import DOMAIN, TOKEN, Network, Party


def _other_signature(party: Party, digest: bytes) -> Signature:
    """A second valid ECDSA signature over the same digest (another nonce k)."""
    key = coincurve.PrivateKey(party.key.secret)
    # RFC 6979 with extra entropy: the same statement, a different k, a different signature.
    extra = ffi.new("unsigned char[32]", b"\x07" * 32)
    raw = key.sign_recoverable(digest, hasher=None, custom_nonce=(ffi.NULL, extra))
    return Signature(raw[:64] + bytes([raw[64] + 27]))


def test_an_equivocating_payer_gains_nothing_from_a_second_proof_of_one_total() -> None:
    net = Network()
    channel = net.open_channel(deposit_a=100)
    net.apply(net.alice, Pay(channel, 10))
    net.deliver_all()
    honest = net.bob.state(channel)
    digest = balance_proof_digest(DOMAIN, channel, 10)
    twin = _other_signature(net.alice, digest)
    assert twin != honest.received_signature
    assert recover_signer(digest, twin) == net.alice.address  # both are valid proofs
    for amount, seq in ((10, 1), (0, 2), (10, 2)):
        message = PaymentMessage(
            channel, DOMAIN.chain_id, DOMAIN.verifying_contract, 10, amount, seq, twin
        )
        outputs = net.apply(net.bob, Received(net.alice.address, message, net.now_ms))
        assert [o.code for o in outputs if isinstance(o, Rejected)], (amount, seq)
        assert net.bob.state(channel) is honest  # the first proof stands, unchanged
    # Either signature closes at the same total: the payee is owed exactly what it got.
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.settle_everything()
    assert net.hub.payouts[channel] == (90, 10)


def test_a_front_run_open_leaves_the_chain_in_charge_and_costs_the_opener_nothing() -> None:
    net = Network()
    net.apply(net.alice, Propose(net.bob.address, TOKEN, 100, 0, 100, 1, net.now_ms, 60_000))
    net.deliver_all()
    channel = next(iter(net.bob.channels))
    net.apply(net.bob, Accept(channel))
    net.deliver_all()
    [(_, _, tx)] = net.mempool
    assert isinstance(tx, OpenTx)
    # Before alice's open is mined, a third party opens the same channel with 1 unit.
    front_run = OpenTx(replace(tx.terms, deposit_a=1))
    for chain_input in net.hub.execute(net.bob.address, front_run):
        net.apply(net.alice, chain_input)
        net.apply(net.bob, chain_input)
    net.mine()  # alice's own open fails: the id is taken, her tokens never moved
    assert net.failed_tx == [("open", "channel id already used")]
    for party in (net.alice, net.bob):
        state = party.state(channel)
        assert (state.phase, state.deposit_a, state.deposit_b) == (Phase.OPEN, 1, 0)
        assert any(isinstance(e, ChannelOpened) for e in party.events)
    # Alice can pay only what the chain holds, and tops up to what she meant.
    refused = net.apply(net.alice, Pay(channel, 2))
    assert [o.code for o in refused if isinstance(o, Rejected)] == [ErrorCode.INSUFFICIENT_BALANCE]
    topped = net.apply(net.alice, TopUp(channel, 99))
    assert any(isinstance(o, Submit) for o in topped)
    net.mine()
    assert net.alice.state(channel).deposit_a == net.bob.state(channel).deposit_a == 100
