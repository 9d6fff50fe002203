"""The watcher's pure rules: folding events, planning actions, refusing submissions,
and replaying its records. No chain, no network, no clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.chain.events import (
    ChannelChallenged,
    ChannelClosing,
    ChannelDeposited,
    ChannelOpened,
    ChannelSettled,
    HubEvent,
)
from m2mpay.chain.hub import Closing
from m2mpay.crypto import Address, PrivateKey, Signature
from m2mpay.watcher.core import (
    ChainTime,
    ChainView,
    Challenge,
    ChannelParams,
    HeldProof,
    Phase,
    Settle,
    apply_event,
    plan,
    proof_refusal,
    registration_refusal,
)
from m2mpay.watcher.errors import InvalidInput
from m2mpay.watcher.parsing import parse_channel_params, parse_signature, parse_uint256
from m2mpay.watcher.state import Dispute, WatcherState

A = PrivateKey(bytes([1]) * 32)
B = PrivateKey(bytes([2]) * 32)
TOKEN = Address("0x" + "ab" * 20)
PARAMS = ChannelParams(A.address, B.address, TOKEN, 100, 7)
CID = PARAMS.id
SIG = A.sign_digest(bytes(32))
NOW = ChainTime(latest_block=1_000, estimate=1_000)


def _tx(n: int) -> bytes:
    return n.to_bytes(32, "big")


def opened(block: int, deposit: int = 100) -> ChannelOpened:
    return ChannelOpened(block, _tx(block), 0, CID, A.address, B.address, TOKEN, 100, 7, deposit)


def deposited(block: int, deposit_a: int, deposit_b: int) -> ChannelDeposited:
    return ChannelDeposited(block, _tx(block), 0, CID, B.address, deposit_b, deposit_a, deposit_b)


def closing(block: int, ta: int, tb: int, deadline: int = 1_100) -> ChannelClosing:
    return ChannelClosing(block, _tx(block), 0, CID, A.address, ta, tb, deadline)


def challenged(block: int, ta: int, tb: int, deadline: int = 1_100) -> ChannelChallenged:
    return ChannelChallenged(block, _tx(block), 0, CID, B.address, ta, tb, deadline)


def settled(block: int, ba: int, bb: int) -> ChannelSettled:
    return ChannelSettled(block, _tx(block), 0, CID, ba, bb, False)


HISTORY: list[HubEvent] = [
    opened(1),
    deposited(2, 100, 50),
    closing(3, 10, 0),
    challenged(4, 40, 0),
    challenged(5, 40, 30),
]


def fold(events: list[HubEvent], view: ChainView | None = None) -> ChainView:
    view = view or ChainView()
    for event in events:
        view = apply_event(view, event)
    return view


def test_folding_the_history_gives_the_chain_state() -> None:
    view = fold(HISTORY)
    assert view.phase is Phase.CLOSING
    assert (view.deposit_a, view.deposit_b) == (100, 50)
    assert view.closing == Closing(1_100, 40, 30)
    assert (view.closer, view.close_block) == (A.address, 3)
    assert fold([*HISTORY, settled(9, 110, 40)]).phase is Phase.SETTLED


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(HISTORY))))[::7])
def test_folding_is_order_insensitive(order: tuple[int, ...]) -> None:
    """The back-fill and the live follower may deliver the same events in any order."""
    assert fold([HISTORY[i] for i in order]) == fold(HISTORY)


@given(st.lists(st.sampled_from(HISTORY), max_size=12))
def test_folding_again_changes_nothing(extra: list[HubEvent]) -> None:
    once = fold(HISTORY)
    assert fold(extra, once) == once
    assert apply_event(once, HISTORY[0]) is once  # unchanged views are the same object


def test_phases_before_and_after_events() -> None:
    assert ChainView().phase is Phase.UNKNOWN
    assert fold([opened(1)]).phase is Phase.OPEN


def held(transferred: int) -> dict[Address, HeldProof]:
    """The proof a watcher holds for b: signed by a, b's peer."""
    return {B.address: HeldProof(transferred, SIG)}


def test_plan_challenges_a_close_below_the_held_total() -> None:
    view = fold(HISTORY[:3])  # a closed claiming 10
    action = plan(PARAMS, view, held(60), NOW)
    assert isinstance(action, Challenge)
    assert (action.participant, action.beneficiary) == (A.address, B.address)
    assert (action.transferred, action.replaced) == (60, 10)
    assert action.channel.deposit_a == 100
    assert action.channel.deposit_b == 50
    assert action.closing == Closing(1_100, 10, 0)


@pytest.mark.parametrize("transferred", [10, 5, 0])
def test_plan_does_nothing_when_the_chain_already_has_as_much(transferred: int) -> None:
    assert plan(PARAMS, fold(HISTORY[:3]), held(transferred), NOW) is None


def test_plan_skips_a_challenge_that_would_not_change_the_payout() -> None:
    # a deposited 100: totals past that are clamped, so 150 pays b what 100 does.
    view = fold([opened(1), closing(2, 100, 0)])
    assert plan(PARAMS, view, held(150), NOW) is None


def test_plan_needs_the_deposits_and_a_closing() -> None:
    assert plan(PARAMS, fold([closing(3, 10, 0)]), held(60), NOW) is None  # deposits unknown
    assert plan(PARAMS, fold([opened(1)]), held(60), NOW) is None  # open: nothing to do
    assert plan(PARAMS, fold([*HISTORY, settled(9, 1, 1)]), held(60), NOW) is None


def test_plan_challenges_for_both_parties_one_at_a_time() -> None:
    view = fold(HISTORY[:3])  # totals a=10, b=0
    both = {B.address: HeldProof(60, SIG), A.address: HeldProof(20, SIG)}
    first = plan(PARAMS, view, both, NOW)
    assert isinstance(first, Challenge)
    assert first.participant == B.address
    after = apply_event(view, challenged(4, 10, 20))
    second = plan(PARAMS, after, both, NOW)
    assert isinstance(second, Challenge)
    assert second.participant == A.address
    assert plan(PARAMS, apply_event(after, challenged(5, 60, 20)), both, NOW) is None


def test_plan_settles_once_the_deadline_has_passed() -> None:
    view = fold(HISTORY)
    assert plan(PARAMS, view, {}, ChainTime(1_100, 1_100)) is None  # deadline is inclusive
    action = plan(PARAMS, view, {}, ChainTime(1_000, 1_101))
    assert isinstance(action, Settle)
    assert action.closing == Closing(1_100, 40, 30)


def test_plan_tries_a_challenge_while_the_newest_block_allows_it() -> None:
    view = fold(HISTORY[:3])
    # The likely time is past the deadline, but no block is: a challenge may still land.
    assert isinstance(plan(PARAMS, view, held(60), ChainTime(1_100, 1_105)), Challenge)
    # A block past the deadline exists: only settling can work now.
    assert isinstance(plan(PARAMS, view, held(60), ChainTime(1_101, 1_105)), Settle)


def test_proof_refusals() -> None:
    assert proof_refusal(None, 1) is None
    assert proof_refusal(None, 0) is not None  # nothing to hold
    assert proof_refusal(HeldProof(5, SIG), 5) is not None
    assert proof_refusal(HeldProof(5, SIG), 4) is not None
    assert proof_refusal(HeldProof(5, SIG), 6) is None
    assert proof_refusal(None, 2**256) is not None


def test_registration_refusals() -> None:
    assert registration_refusal(PARAMS, B.address, 1_000, 1_100) is None
    stranger = Address("0x" + "11" * 20)
    assert registration_refusal(PARAMS, stranger, 1_000, 1_000) == (
        "not_a_party",
        f"{stranger} is neither party a nor party b",
        "party",
    )
    for issued_at in (1_000 - 301, 1_000 + 301):
        refusal = registration_refusal(PARAMS, B.address, issued_at, 1_000)
        assert refusal is not None
        assert refusal[0] == "issued_at_out_of_range"


def test_parsing_names_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_uint256("01", "transferred")
    assert caught.value.field == "transferred"
    for bad in ("-1", "1e3", " 1", "", "0x10", str(2**256)):
        with pytest.raises(InvalidInput):
            parse_uint256(bad, "transferred")
    assert parse_uint256(str(2**256 - 1), "t") == 2**256 - 1
    with pytest.raises(InvalidInput) as caught:
        parse_channel_params(
            {
                "a": str(A.address),
                "b": str(A.address),
                "token": str(TOKEN),
                "challenge_period": 5,
                "nonce": "1",
            }
        )
    assert caught.value.field == "channel.b"
    with pytest.raises(InvalidInput) as caught:
        parse_channel_params({"a": str(A.address)})
    assert caught.value.field == "channel.b"
    assert caught.value.code == "missing_field"
    high_s = SIG[:32] + (2**256 - 1 - 5).to_bytes(32, "big") + SIG[64:]
    with pytest.raises(InvalidInput) as caught:
        parse_signature("0x" + high_s.hex())
    assert caught.value.code == "bad_signature"


def test_records_replay_to_the_same_state_and_snapshot_round_trips() -> None:
    live = WatcherState()
    records = []
    watched, record = live.register(PARAMS, B.address, b"\x01" * 32, 1_000)
    records.append(record)
    records.append(live.set_proof(watched, B.address, HeldProof(60, Signature(SIG))))
    records.append(live.set_view(watched, fold(HISTORY), 123))
    records.append(live.mark_backfilled([watched]))
    dispute = Dispute(1, "challenge", CID, "submitted", 5, A.address, B.address, 60, 10)
    records.append(live.put_dispute(dispute))
    dispute.status = "mined"
    records.append(live.put_dispute(dispute))
    _, record = live.register(PARAMS, B.address, b"\x02" * 32, 1_001)  # a newer token
    records.append(record)

    replayed = WatcherState()
    for record in records:
        replayed.apply_record(record)
    restored = WatcherState.from_snapshot(live.snapshot())
    for state in (replayed, restored):
        assert state.snapshot() == live.snapshot()
        again = state.channels[CID]
        assert again.parties[B.address].proof == HeldProof(60, SIG)
        assert again.parties[B.address].token_hash == b"\x02" * 32
        assert again.view == fold(HISTORY)
        assert again.close_seen_at_ms == 123
        assert state.proofs == 1
        assert [d.status for d in again.disputes] == ["mined"]
    assert WatcherState().interrupted() == []
