"""The watcher's pure rules at their edges: the newest event folded twice, older events
of each group arriving late, closings where both sides have paid, the payout clamp for
either party, and the exact bounds of its refusals."""

from __future__ import annotations

import pytest

from m2mpay.chain.hub import Closing
from m2mpay.crypto import Address
from m2mpay.watcher.core import (
    REGISTRATION_WINDOW_S,
    UINT256_MAX,
    ChainTime,
    ChainView,
    Challenge,
    HeldProof,
    Settle,
    apply_event,
    plan,
    proof_refusal,
    registration_refusal,
)
from tests.watcher.test_core import (
    NOW,
    PARAMS,
    SIG,
    A,
    B,
    challenged,
    closing,
    deposited,
    fold,
    opened,
    settled,
)


@pytest.mark.parametrize(
    "newest",
    [opened(1), deposited(2, 100, 50), closing(3, 10, 0), challenged(4, 40, 0), settled(5, 1, 2)],
    ids=["opened", "deposited", "closing", "challenged", "settled"],
)
def test_folding_the_newest_event_again_returns_the_same_view(newest: object) -> None:
    """The back-fill re-delivers the event the live follower just folded."""
    view = fold([opened(1), deposited(2, 100, 50), closing(3, 10, 0), challenged(4, 40, 0)])
    view = apply_event(view, newest)  # type: ignore[arg-type]
    assert apply_event(view, newest) is view  # type: ignore[arg-type]


def test_an_open_resets_b_s_deposit_and_a_late_one_changes_nothing() -> None:
    view = fold([opened(1, deposit=70)])
    assert (view.deposit_a, view.deposit_b, view.deposits_at) == (70, 0, (1, 0))
    funded = apply_event(view, deposited(2, 70, 30))
    assert apply_event(funded, opened(1, deposit=70)) is funded
    assert (funded.deposit_a, funded.deposit_b) == (70, 30)


def test_a_late_close_event_adds_its_facts_but_not_its_older_totals() -> None:
    view = fold([opened(1), challenged(5, 40, 30)])
    assert (view.closer, view.close_block) == (None, None)
    view = apply_event(view, closing(3, 10, 0))
    assert view.closing == Closing(1_100, 40, 30)  # the challenge is newer
    assert (view.closer, view.close_block) == (A.address, 3)
    assert apply_event(view, challenged(4, 20, 30)).closing == Closing(1_100, 40, 30)


def test_the_first_settlement_seen_stands() -> None:
    view = fold([opened(1), closing(2, 0, 0), settled(9, 60, 40)])
    assert (view.settlement, view.settled_block) == ((60, 40, False), 9)
    assert apply_event(view, settled(10, 1, 99)) is view


# -- closings where both sides have paid


def _both_paid(ta: int, tb: int, deposit_a: int = 100, deposit_b: int = 100) -> ChainView:
    return fold([opened(1, deposit_a), deposited(2, deposit_a, deposit_b), closing(3, ta, tb)])


def test_a_challenge_for_a_raises_b_s_total_and_reports_what_it_replaces() -> None:
    view = _both_paid(30, 20)
    action = plan(PARAMS, view, {A.address: HeldProof(50, SIG)}, NOW)
    assert isinstance(action, Challenge)
    assert (action.participant, action.beneficiary) == (B.address, A.address)
    assert (action.transferred, action.replaced) == (50, 20)


def test_a_challenge_for_b_raises_a_s_total_and_reports_what_it_replaces() -> None:
    view = _both_paid(30, 20)
    action = plan(PARAMS, view, {B.address: HeldProof(50, SIG)}, NOW)
    assert isinstance(action, Challenge)
    assert (action.participant, action.beneficiary) == (A.address, B.address)
    assert (action.transferred, action.replaced) == (50, 30)


@pytest.mark.parametrize("party", ["a", "b"])
def test_a_proof_equal_to_the_chain_total_is_not_a_challenge_for_either_party(
    party: str,
) -> None:
    view = _both_paid(30, 20)
    beneficiary, recorded = (A.address, 20) if party == "a" else (B.address, 30)
    assert plan(PARAMS, view, {beneficiary: HeldProof(recorded, SIG)}, NOW) is None
    raised = plan(PARAMS, view, {beneficiary: HeldProof(recorded + 1, SIG)}, NOW)
    assert isinstance(raised, Challenge)


@pytest.mark.parametrize("party", ["a", "b"])
def test_the_payout_clamp_applies_to_either_payer(party: str) -> None:
    """A payer cannot pay more than it deposited (plus what it got): past that a higher
    total changes nobody's payout, so a challenge would only burn gas."""
    if party == "a":  # a is paid by b, who deposited 40 and got 10 from a
        view, beneficiary = _both_paid(10, 50, deposit_b=40), A.address
    else:  # b is paid by a, who deposited 40 and got 10 from b
        view, beneficiary = _both_paid(50, 10, deposit_a=40), B.address
    assert plan(PARAMS, view, {beneficiary: HeldProof(70, SIG)}, NOW) is None
    view_below = (
        _both_paid(10, 49, deposit_b=40) if party == "a" else _both_paid(49, 10, deposit_a=40)
    )
    assert isinstance(plan(PARAMS, view_below, {beneficiary: HeldProof(70, SIG)}, NOW), Challenge)


def test_a_challenge_is_planned_in_the_block_stamped_at_the_deadline() -> None:
    view = _both_paid(30, 20)
    held = {A.address: HeldProof(50, SIG)}
    assert isinstance(plan(PARAMS, view, held, ChainTime(1_100, 1_100)), Challenge)
    assert isinstance(plan(PARAMS, view, held, ChainTime(1_101, 1_101)), Settle)


def test_the_settlement_names_the_deposits_of_both_parties() -> None:
    view = _both_paid(30, 20, deposit_a=70, deposit_b=60)
    action = plan(PARAMS, view, {}, ChainTime(1_101, 1_101))
    assert isinstance(action, Settle)
    assert (action.channel.deposit_a, action.channel.deposit_b) == (70, 60)
    assert (action.channel.a, action.channel.b) == (A.address, B.address)
    assert action.channel.challenge_period == PARAMS.challenge_period
    assert action.channel.nonce == PARAMS.nonce
    assert action.channel.id == PARAMS.id


# -- refusals, at their exact bounds


def test_proof_refusal_bounds() -> None:
    assert proof_refusal(None, -1) == "not a uint256"
    assert proof_refusal(None, UINT256_MAX) is None
    assert proof_refusal(None, UINT256_MAX + 1) == "not a uint256"
    assert proof_refusal(HeldProof(5, SIG), 5) == "not newer than the total held (5)"
    assert proof_refusal(None, 0) == "not newer than the total held (0)"


@pytest.mark.parametrize("party", [A.address, B.address])
@pytest.mark.parametrize("offset", [-REGISTRATION_WINDOW_S, REGISTRATION_WINDOW_S])
def test_a_registration_exactly_at_the_window_edge_is_accepted(party: Address, offset: int) -> None:
    assert registration_refusal(PARAMS, party, 1_000 + offset, 1_000) is None
    late = offset + (1 if offset > 0 else -1)
    refusal = registration_refusal(PARAMS, party, 1_000 + late, 1_000)
    assert refusal is not None
    assert refusal[0] == "issued_at_out_of_range"
    assert refusal[2] == "issued_at"


def test_peer_is_symmetric() -> None:
    assert PARAMS.peer(A.address) == B.address
    assert PARAMS.peer(B.address) == A.address


@pytest.mark.parametrize("party", ["a", "b"])
def test_a_challenge_is_planned_when_the_other_total_on_chain_is_larger(party: str) -> None:
    """The proof is compared with its payer's total, not with the other one: a closing
    where the beneficiary paid more than it was paid must still be challenged."""
    if party == "a":  # a holds b's proof of 40; b's total on chain is 10, a's is 60
        view, beneficiary = _both_paid(60, 10), A.address
    else:  # b holds a's proof of 40; a's total on chain is 10, b's is 60
        view, beneficiary = _both_paid(10, 60), B.address
    action = plan(PARAMS, view, {beneficiary: HeldProof(40, SIG)}, NOW)
    assert isinstance(action, Challenge)
    assert (action.transferred, action.replaced) == (40, 10)


def test_a_late_deposit_event_does_not_roll_the_deposits_back() -> None:
    view = fold([opened(1), deposited(2, 100, 50), deposited(3, 100, 80)])
    assert apply_event(view, deposited(2, 100, 50)) is view
    assert (view.deposit_a, view.deposit_b) == (100, 80)
