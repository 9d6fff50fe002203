"""The grant keeper's decoders against hostile input: a log record or a snapshot read
back from the store (which a damaged or tampered disk can make anything) decodes to a
grant input or grants, or raises `StoreError`; `from_plain` builds a grant's types or
raises `MalformedMessage`, whatever a field holds; and the grant machine takes any
input it decodes, in any state, without raising."""

from __future__ import annotations

from typing import Any, Final

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.access.grant import (
    AllowRead,
    Expire,
    Grant,
    GrantEnded,
    GrantOpened,
    GrantOutput,
    GrantPhase,
    GrantRefused,
    Permitted,
    RemoveClient,
    RevokeRead,
    transition,
)
from m2mpay.access.keeper import _GrantMachine
from m2mpay.crypto import Address
from m2mpay.errors import MalformedMessage, StoreError
from m2mpay.plain import from_plain, registered_types, to_plain
from tests.fuzz.hostile import FUZZ, TEN_MB, hostile_json, truncations
from tests.fuzz.wire_types import instances_of

pytestmark = pytest.mark.timeout(60)

INPUTS: Final = (GrantOpened, Permitted, Expire, GrantEnded)
OUTPUTS: Final = (AllowRead, RevokeRead, RemoveClient, GrantRefused)
GRANT_TYPES: Final = (Grant, *INPUTS, *OUTPUTS)

grant_inputs: Final = st.one_of([instances_of(cls) for cls in INPUTS])
grant_outputs: Final = st.one_of([instances_of(cls) for cls in OUTPUTS])
grant_values: Final = st.one_of([instances_of(cls) for cls in GRANT_TYPES])
grants: Final = instances_of(Grant)
hostile_values: Final = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**600), 2**600)
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=40)
    | st.sampled_from(sorted(registered_types())),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
MACHINE: Final = _GrantMachine()


def _builds_or_refuses(value: Any) -> None:
    try:
        built = from_plain(value)
    except MalformedMessage:
        return
    assert type(built) in registered_types().values()


def _record_or_refused(data: bytes) -> None:
    try:
        decoded = MACHINE.decode_record(data)
    except StoreError:
        return
    assert isinstance(decoded, INPUTS)


@given(value=grant_values, binary=st.booleans())
@FUZZ
def test_every_grant_type_comes_back_as_it_went(value: Any, binary: bool) -> None:
    assert from_plain(to_plain(value, binary=binary)) == value


@given(value=grant_values, hostile=hostile_values, data=st.data())
@FUZZ
def test_any_value_at_any_field_of_a_grant_type(value: Any, hostile: Any, data: Any) -> None:
    for binary in (True, False):
        plain = to_plain(value, binary=binary)
        plain[data.draw(st.sampled_from(sorted(plain)))] = hostile
        _builds_or_refuses(plain)


@given(inp=grant_inputs, outputs=st.lists(grant_outputs, max_size=3))
@FUZZ
def test_a_log_record_decodes_to_its_input(inp: Any, outputs: list[GrantOutput]) -> None:
    assert MACHINE.decode_record(MACHINE.encode_record(inp, tuple(outputs))) == inp


@pytest.mark.parametrize(
    "other",
    [
        AllowRead("buyer-1", "m2m/plug/live"),
        Grant(b"\x05" * 32, Address(b"\x11" * 20), "b", "t", GrantPhase.LIVE, 1, 2, 3),
    ],
    ids=["an-output", "a-grant"],
)
def test_a_record_holding_another_type_is_the_stores_error(other: Any) -> None:
    record = orjson.dumps({"i": to_plain(other, binary=False), "o": []})
    with pytest.raises(StoreError, match="a grant log record holds a"):
        MACHINE.decode_record(record)


@given(data=st.binary(max_size=300))
@FUZZ
def test_any_bytes_as_a_log_record_decode_or_raise_store_error(data: bytes) -> None:
    _record_or_refused(data)


@given(inp=grant_inputs, hostile=hostile_values, data=st.data())
@FUZZ
def test_a_log_record_with_any_field_changed(inp: Any, hostile: Any, data: Any) -> None:
    record = orjson.loads(MACHINE.encode_record(inp, ()))
    plain = record["i"]
    plain[data.draw(st.sampled_from(sorted(plain)))] = hostile
    try:
        changed = orjson.dumps(record)
    except TypeError:
        return  # not JSON (an integer past 64 bits): no store could hold it
    _record_or_refused(changed)


def test_every_truncation_and_hostile_rendering_of_a_record_is_refused_or_read() -> None:
    record = MACHINE.encode_record(Permitted(b"\x05" * 32, 10, 1_000), ())
    for prefix in truncations(record):
        _record_or_refused(prefix)
    for variant in hostile_json(record):
        _record_or_refused(variant)
    with pytest.raises(StoreError):
        MACHINE.decode_record(b"[" * TEN_MB)


@given(states=st.lists(grants, max_size=4))
@FUZZ
def test_a_snapshot_comes_back_as_it_went(states: list[Grant]) -> None:
    by_key = {grant.session_id: grant for grant in states}
    assert MACHINE.decode_snapshot(MACHINE.encode_snapshot(by_key)) == by_key


def _opened() -> Grant:
    grant, _ = transition(None, GrantOpened(b"\x05" * 32, Address(b"\x11" * 20), "b", "t", 1))
    assert grant is not None
    return grant


SNAPSHOT: Final = MACHINE.encode_snapshot({b"\x05" * 32: _opened()})


@given(data=st.binary(max_size=300) | st.sampled_from(hostile_json(SNAPSHOT)))
@FUZZ
def test_any_bytes_as_a_snapshot_decode_to_grants_or_raise_store_error(data: bytes) -> None:
    try:
        states = MACHINE.decode_snapshot(data)
    except StoreError:
        return
    assert all(isinstance(grant, Grant) for grant in states.values())


@given(state=st.none() | grants, inp=grant_inputs)
@FUZZ
def test_the_machine_takes_any_input_in_any_state(state: Grant | None, inp: Any) -> None:
    after, outputs = transition(state, inp)
    assert after is None or isinstance(after, Grant)
    assert all(isinstance(output, OUTPUTS) for output in outputs)
    if after is not None and state is not None:
        assert after.session_id == state.session_id  # a grant is never another's
