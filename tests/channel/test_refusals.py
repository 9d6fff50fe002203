"""Every refusal leaves the state object as it was, names the channel, and is
recognised as a refusal, so the engine neither logs nor stores it (log, then act:
a refused input must leave no record to replay)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from m2mpay.channel.inputs import (
    Accept,
    ForceClose,
    Input,
    Pay,
    Received,
    Reject,
    RequestClose,
    Resync,
    TopUp,
)
from m2mpay.channel.machine import channel_key, is_refusal, transition
from m2mpay.channel.messages import ChannelSync
from m2mpay.channel.outputs import ErrorCode, Rejected
from m2mpay.channel.state import Phase
from tests.channel.harness import Network, Party

UNKNOWN = b"\x77" * 32


def _refusal(party: Party, inp: Input) -> list[tuple[ErrorCode, bytes | None]]:
    key = channel_key(party.ctx, inp)
    before = party.channels.get(key) if key is not None else None
    after, outputs = transition(party.ctx, before, inp)
    assert after is before, "a refused input must leave the state object as it was"
    assert is_refusal(before, after, outputs)
    return [(o.code, o.channel_id) for o in outputs if isinstance(o, Rejected)]


def _open() -> tuple[Network, bytes]:
    net = Network()
    return net, net.open_channel(deposit_a=1_000, deposit_b=1_000)


LOCAL: list[tuple[str, Callable[[bytes], Input], ErrorCode]] = [
    ("pay-zero", lambda c: Pay(c, 0), ErrorCode.NON_POSITIVE_AMOUNT),
    ("pay-too-much", lambda c: Pay(c, 10**9), ErrorCode.INSUFFICIENT_BALANCE),
    ("top-up-zero", lambda c: TopUp(c, 0), ErrorCode.NON_POSITIVE_AMOUNT),
]


@pytest.mark.parametrize(
    ("make", "code"), [(m, c) for _, m, c in LOCAL], ids=[n for n, _, _ in LOCAL]
)
@pytest.mark.parametrize("who", ["alice", "bob"])
def test_a_refused_local_request_changes_nothing(
    make: Callable[[bytes], Input], code: ErrorCode, who: str
) -> None:
    net, channel = _open()
    party = net.alice if who == "alice" else net.bob
    assert _refusal(party, make(channel)) == [(code, channel)]


UNKNOWN_CHANNEL: list[tuple[str, Input]] = [
    ("pay", Pay(UNKNOWN, 1)),
    ("top-up", TopUp(UNKNOWN, 1)),
    ("request-close", RequestClose(UNKNOWN, 0)),
    ("force-close", ForceClose(UNKNOWN)),
    ("accept", Accept(UNKNOWN)),
    ("reject", Reject(UNKNOWN, "no")),
    ("resync", Resync(UNKNOWN)),
]


@pytest.mark.parametrize(
    "inp", [i for _, i in UNKNOWN_CHANNEL], ids=[n for n, _ in UNKNOWN_CHANNEL]
)
def test_a_request_about_an_unknown_channel_is_refused_by_id(inp: Input) -> None:
    net, _ = _open()
    assert _refusal(net.alice, inp) == [(ErrorCode.UNKNOWN_CHANNEL, UNKNOWN)]


WRONG_PHASE: list[tuple[str, Callable[[bytes], Input]]] = [
    ("pay", lambda c: Pay(c, 1)),
    ("top-up", lambda c: TopUp(c, 1)),
    ("request-close", lambda c: RequestClose(c, 0)),
    ("force-close", ForceClose),
    ("accept", Accept),
    ("reject", lambda c: Reject(c, "no")),
]


@pytest.mark.parametrize("make", [m for _, m in WRONG_PHASE], ids=[n for n, _ in WRONG_PHASE])
def test_a_request_in_the_wrong_phase_is_refused_by_id(make: Callable[[bytes], Input]) -> None:
    net, channel = _open()
    net.apply(net.alice, ForceClose(channel))
    net.mine()
    net.tick(net.alice, channel, advance_s=1_000)
    net.mine()
    assert net.alice.state(channel).phase is Phase.SETTLED
    assert _refusal(net.alice, make(channel)) == [(ErrorCode.INVALID_PHASE, channel)]


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_a_sync_claiming_totals_without_proofs_is_refused(who: str) -> None:
    net, channel = _open()
    party = net.alice if who == "alice" else net.bob
    peer = net.other(party)
    no_proof = ChannelSync(channel, 50, 1, None, 0, 0, None)
    received = Received(peer.address, no_proof, net.now_ms)
    assert _refusal(party, received) == [(ErrorCode.BAD_SIGNATURE, channel)]
    # Our own "newest proof" as the peer holds it must carry our signature.
    forged = peer.key.sign_digest(b"\x02" * 32)
    claim = ChannelSync(channel, 0, 0, None, 70, 1, forged)
    received = Received(peer.address, claim, net.now_ms)
    assert _refusal(party, received) == [(ErrorCode.BAD_SIGNATURE, channel)]
    assert party.state(channel).sent_total == 0
