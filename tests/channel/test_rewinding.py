"""The machine after a chain reorganisation: `ChainRewound` sets its on-chain view back
to what the chain holds, and what the dropped events made unnecessary is done again."""

from __future__ import annotations

from dataclasses import replace
from itertools import product

import pytest

from m2mpay.channel.inputs import (
    ChainChallenged,
    ChainClosing,
    ChainDeposited,
    ChainOpened,
    ChainRewound,
    ChainSettled,
    ForceClose,
    Pay,
    RequestClose,
)
from m2mpay.channel.outputs import (
    ChainReorganised,
    ChallengeTx,
    CloseTx,
    SettleTx,
)
from m2mpay.channel.rewinding import ChainFact, chain_view
from m2mpay.channel.state import (
    ALLOWED_TRANSITIONS,
    REWIND_TRANSITIONS,
    ChannelState,
    OnchainClose,
    Phase,
)
from m2mpay.errors import ChannelError
from m2mpay.plain import from_plain, to_plain
from tests.channel.harness import Network, Party

_FACTS = (ChainOpened, ChainDeposited, ChainClosing, ChainChallenged, ChainSettled)


def _facts(party: Party, channel: bytes) -> list[ChainFact]:
    """The chain events a party has seen about a channel, in order."""
    return [i for i in party.log if isinstance(i, _FACTS) and i.channel_id == channel]


def _rewind(net: Network, facts: list[ChainFact], keep: int, channel: bytes) -> ChainRewound:
    """The chain's view once every event after the first `keep` is dropped."""
    return chain_view(channel, facts[:keep], facts[keep].block_number, net.now_ms)


def _submitted(party: Party, net: Network) -> list[object]:
    return [tx for p, _, tx in net.mempool if p is party]


def test_a_dropped_deposit_leaves_the_view_and_comes_back_with_the_new_chain() -> None:
    net = Network()
    channel = net.open_channel(deposit_a=1_000, deposit_b=500)
    facts = _facts(net.bob, channel)
    assert [type(f) for f in facts] == [ChainOpened, ChainDeposited]
    rewound = _rewind(net, facts, 1, channel)
    for party in (net.alice, net.bob):
        net.apply(party, rewound)
        state = party.state(channel)
        assert (state.phase, state.deposit_a, state.deposit_b) == (Phase.OPEN, 1_000, 0)
        assert party.events[-1] == ChainReorganised(channel, "open", 1_000, 0)
    assert net.mempool == []  # the ledger sends the dropped deposit again, not the machine
    for party in (net.alice, net.bob):
        net.apply(party, facts[1])  # mined again
        assert party.state(channel).deposit_b == 500


def test_a_view_the_machine_already_holds_changes_nothing() -> None:
    net = Network()
    channel = net.open_channel()
    facts = _facts(net.alice, channel)
    before = net.alice.state(channel)
    outputs = net.apply(net.alice, chain_view(channel, facts, 99, net.now_ms))
    assert outputs == ()
    assert net.alice.state(channel) is before


def test_our_dropped_close_is_made_again_with_our_newest_proofs() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Pay(channel, 100))
    net.deliver_all()
    net.apply(net.bob, ForceClose(channel))
    net.mine()
    assert net.bob.state(channel).phase is Phase.DISPUTED
    facts = _facts(net.bob, channel)
    rewound = _rewind(net, facts, len(facts) - 1, channel)

    net.apply(net.bob, rewound)
    bob = net.bob.state(channel)
    assert (bob.phase, bob.onchain_close) == (Phase.OPEN, None)
    [close] = _submitted(net.bob, net)
    assert isinstance(close, CloseTx)
    assert (close.transferred_a, close.transferred_b) == (100, 0)
    net.apply(net.alice, rewound)  # the peer's close is not ours to make again
    assert net.alice.state(channel).phase is Phase.OPEN
    assert _submitted(net.alice, net) == []


def test_a_dropped_challenge_is_made_again() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, Pay(channel, 100))
    net.deliver_all()
    stale = ChainClosing(channel, net.alice.address, 0, 0, 2_000_000, net.hub.block + 1)
    net.apply(net.bob, stale)
    [challenge] = _submitted(net.bob, net)
    assert isinstance(challenge, ChallengeTx)
    net.mempool.clear()
    net.apply(net.bob, ChainChallenged(channel, 100, 0, 2_000_000, net.hub.block + 2))
    assert net.bob.state(channel).pending_tx == ()
    assert _submitted(net.bob, net) == []

    net.apply(net.bob, chain_view(channel, [*_facts(net.bob, channel)[:-1]], 99, net.now_ms))
    bob = net.bob.state(channel)
    assert bob.phase is Phase.DISPUTED
    assert bob.onchain_close == OnchainClose(net.alice.address, 2_000_000, 0, 0)
    [again] = _submitted(net.bob, net)
    assert isinstance(again, ChallengeTx)
    assert again.transferred == 100


def test_a_dropped_settlement_is_settled_again_after_the_deadline() -> None:
    net = Network()
    channel = net.open_channel(period=100)
    net.apply(net.alice, ForceClose(channel))
    net.mine()
    net.tick(net.alice, channel, advance_s=101)
    net.mine()
    assert net.alice.state(channel).phase is Phase.SETTLED
    facts = _facts(net.alice, channel)
    assert isinstance(facts[-1], ChainSettled)

    net.apply(net.alice, _rewind(net, facts, len(facts) - 1, channel))
    alice = net.alice.state(channel)
    assert (alice.phase, alice.final_balance_a) == (Phase.DISPUTED, None)
    net.tick(net.alice, channel)
    [settle] = _submitted(net.alice, net)
    assert isinstance(settle, SettleTx)


def test_a_dropped_cooperative_close_gets_the_close_timeout_again() -> None:
    net = Network()
    channel = net.open_channel()
    net.apply(net.alice, RequestClose(channel, net.now_ms))
    net.settle_everything()
    assert net.alice.state(channel).phase is Phase.CLOSED
    facts = _facts(net.alice, channel)
    net.now_ms += 10 * net.alice.ctx.config.close_timeout_ms

    net.apply(net.alice, _rewind(net, facts, len(facts) - 1, channel))
    alice = net.alice.state(channel)
    assert alice.phase is Phase.CLOSING
    assert alice.close is not None
    assert alice.close.started_at_ms == net.now_ms
    net.tick(net.alice, channel)
    assert _submitted(net.alice, net) == []  # the resent cooperative close may still land
    net.tick(net.alice, channel, advance_ms=net.alice.ctx.config.close_timeout_ms)
    assert [type(tx) for tx in _submitted(net.alice, net)] == [CloseTx]


def test_a_dropped_open_takes_the_channel_back_to_accepted_until_it_lands_again() -> None:
    net = Network()
    channel = net.open_channel()
    opened = _facts(net.bob, channel)[0]
    rewound = chain_view(channel, [], opened.block_number, net.now_ms)
    net.apply(net.bob, rewound)
    bob = net.bob.state(channel)
    assert (bob.phase, bob.deposit_a) == (Phase.ACCEPTED, 0)
    net.apply(net.bob, opened)
    assert net.bob.state(channel).phase is Phase.OPEN


def test_a_channel_that_never_stood_on_the_chain_ignores_a_rewind() -> None:
    net = Network()
    channel = net.open_channel()
    view = chain_view(channel, [], 5, net.now_ms)
    other = replace(view, channel_id=b"\x99" * 32)
    assert net.apply(net.alice, other) == ()


@pytest.mark.parametrize(("start", "end"), list(product(Phase, Phase)))
def test_a_rewind_moves_only_as_the_tables_say(start: Phase, end: Phase) -> None:
    net = Network()
    channel = net.open_channel()
    state: ChannelState = replace(net.alice.state(channel), phase=start)
    via_dispute = end is Phase.SETTLED and Phase.DISPUTED in ALLOWED_TRANSITIONS[start]
    if (
        start is end
        or end in ALLOWED_TRANSITIONS[start]
        or end in REWIND_TRANSITIONS.get(start, frozenset())
        or via_dispute
    ):
        assert state.rewound_to(end).phase is end
    else:
        with pytest.raises(ChannelError, match="invalid_transition"):
            state.rewound_to(end)


def test_nothing_is_rewound_to_before_accepted() -> None:
    for targets in REWIND_TRANSITIONS.values():
        assert not targets & {Phase.PROPOSED, Phase.REJECTED, Phase.EXPIRED}


def test_a_rewind_survives_the_log() -> None:
    closing = OnchainClose(Network().alice.address, 7, 1, 2)
    rewound = ChainRewound(b"\x01" * 32, 9, True, 10, 5, closing, False, 0, 0, False, 123)
    assert from_plain(to_plain(rewound, binary=False)) == rewound
    assert from_plain(to_plain(rewound, binary=True)) == rewound
