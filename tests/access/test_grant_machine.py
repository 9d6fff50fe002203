"""The grant machine: paid seconds become read access until `paid_until_ms`, renewals
before the end leave no gap, the end revokes, and the used seconds never go back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.access.grant import (
    AllowRead,
    Expire,
    Grant,
    GrantCode,
    GrantEnded,
    GrantInput,
    GrantOpened,
    GrantOutput,
    GrantPhase,
    GrantRefused,
    Permitted,
    RemoveClient,
    RevokeRead,
    transition,
)
from m2mpay.crypto import Address
from m2mpay.plain import from_plain, to_plain

SESSION = b"\x01" * 32
BUYER = Address("0x" + "11" * 20)
TOPIC = "m2m/plug-1/live"
T0 = 1_700_000_000_000


def _run(*inputs: GrantInput) -> tuple[Grant | None, list[GrantOutput]]:
    state: Grant | None = None
    outputs: list[GrantOutput] = []
    for inp in inputs:
        state, out = transition(state, inp)
        outputs.extend(out)
    return state, outputs


def _opened(now: int = T0) -> GrantOpened:
    return GrantOpened(SESSION, BUYER, "reader-1", TOPIC, now)


def test_a_payment_makes_the_grant_live_until_the_paid_time_ends() -> None:
    grant, outputs = _run(_opened(), Permitted(SESSION, 60, T0 + 500))
    assert grant is not None
    assert grant.phase is GrantPhase.LIVE
    assert grant.paid_until_ms == T0 + 500 + 60_000
    assert outputs == [AllowRead("reader-1", TOPIC)]
    assert grant.used_s(T0 + 500) == 0
    assert grant.used_s(T0 + 500 + 999) == 0  # a second is used once it is over
    assert grant.used_s(T0 + 500 + 1_000) == 1
    assert grant.used_s(T0 + 500 + 59_999) == 59
    assert grant.left_s(T0 + 500 + 60_000) == 0


def test_a_renewal_before_the_end_moves_the_end_on_with_no_gap_and_no_broker_call() -> None:
    grant, outputs = _run(
        _opened(), Permitted(SESSION, 60, T0), Permitted(SESSION, 120, T0 + 50_000)
    )
    assert grant is not None
    assert grant.paid_until_ms == T0 + 120_000  # the second minute follows the first
    assert outputs == [AllowRead("reader-1", TOPIC)]  # one allow: never revoked between


def test_the_end_revokes_and_a_later_payment_starts_from_then() -> None:
    grant, outputs = _run(
        _opened(),
        Permitted(SESSION, 10, T0),
        Expire(SESSION, T0 + 9_999),  # too early: nothing
        Expire(SESSION, T0 + 10_000),
        Permitted(SESSION, 20, T0 + 30_000),
    )
    assert grant is not None
    assert outputs == [
        AllowRead("reader-1", TOPIC),
        RevokeRead("reader-1", TOPIC),
        AllowRead("reader-1", TOPIC),
    ]
    assert grant.paid_until_ms == T0 + 40_000  # ten new seconds from the payment
    assert grant.used_s(T0 + 30_000) == 10


def test_a_payment_arriving_after_an_unnoticed_end_lapses_first() -> None:
    # The end passed while the node was busy (or down): the old grant lapses before the
    # new seconds count, which start now, not at the old end.
    grant, outputs = _run(
        _opened(), Permitted(SESSION, 10, T0), Permitted(SESSION, 15, T0 + 60_000)
    )
    assert grant is not None
    assert outputs == [
        AllowRead("reader-1", TOPIC),
        RevokeRead("reader-1", TOPIC),
        AllowRead("reader-1", TOPIC),
    ]
    assert grant.paid_until_ms == T0 + 65_000


def test_a_stop_takes_access_back_at_once_and_the_end_removes_the_client() -> None:
    grant, outputs = _run(
        _opened(),
        Permitted(SESSION, 60, T0),
        Permitted(SESSION, 20, T0 + 20_000),  # the session stopped at 20 s
        GrantEnded(SESSION, T0 + 20_500),
    )
    assert grant is not None
    assert grant.phase is GrantPhase.ENDED
    assert outputs == [
        AllowRead("reader-1", TOPIC),
        RevokeRead("reader-1", TOPIC),
        RemoveClient("reader-1"),
    ]
    assert grant.paid_until_ms == T0 + 20_000
    ended, more = transition(grant, GrantEnded(SESSION, T0 + 30_000))
    assert (ended, more) == (grant, ())


def test_refusals_change_nothing() -> None:
    grant, _ = _run(_opened())
    assert grant is not None
    other = GrantOpened(SESSION, BUYER, "someone-else", TOPIC, T0)
    assert transition(grant, other) == (
        grant,
        (GrantRefused(GrantCode.GRANT_EXISTS, "the session already has a grant"),),
    )
    assert transition(grant, _opened(T0 + 5)) == (grant, ())  # the same device again
    none, out = transition(None, Permitted(SESSION, 5, T0))
    assert none is None
    assert out[0] == GrantRefused(GrantCode.UNKNOWN_GRANT, "no grant for that session")
    ended, _ = transition(grant, GrantEnded(SESSION, T0))
    assert ended is not None
    assert transition(ended, Permitted(SESSION, 5, T0))[1][0] == GrantRefused(
        GrantCode.GRANT_ENDED, "the grant has ended"
    )


def test_grants_survive_the_log_codec() -> None:
    grant, _ = _run(_opened(), Permitted(SESSION, 60, T0))
    assert from_plain(to_plain(grant)) == grant
    for inp in (_opened(), Permitted(SESSION, 1, T0), Expire(SESSION, T0), GrantEnded(SESSION, T0)):
        assert from_plain(to_plain(inp)) == inp


_steps = st.lists(
    st.tuples(
        st.sampled_from(["permit", "expire", "stop"]),
        st.integers(0, 120_000),  # ms later
        st.integers(0, 600),  # seconds, for a permit
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_access_is_live_exactly_while_paid_time_is_left_and_use_never_goes_back(
    steps: list[tuple[str, int, int]],
) -> None:
    state, _ = transition(None, _opened())
    assert state is not None
    now = T0
    permit = 0
    readable = False
    used = 0
    for kind, later, seconds in steps:
        now += later
        if kind == "permit":
            permit = max(permit, seconds)  # a running session's permit only grows
            inp: GrantInput = Permitted(SESSION, permit, now)
        elif kind == "expire":
            inp = Expire(SESSION, now)
        else:
            permit = state.used_s(now)
            inp = Permitted(SESSION, permit, now)
        state, outputs = transition(state, inp)
        assert state is not None
        for output in outputs:
            if isinstance(output, AllowRead):
                assert not readable
                readable = True
            elif isinstance(output, RevokeRead):
                assert readable
                readable = False
        assert readable == (state.phase is GrantPhase.LIVE)
        if readable:
            assert state.paid_until_ms > now  # never live past the end it was paid to
        assert state.used_s(now) >= used  # the meter never goes back
        used = state.used_s(now)
        assert used <= state.permitted_s  # never more used than paid
