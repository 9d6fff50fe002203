"""`from_plain` on arbitrary decoded values (what any parser may hand it): it builds the
registered type the value names or raises `MalformedMessage`, and its walk is as deep
as the declared types, never as deep as the value."""

from __future__ import annotations

import sys
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.errors import MalformedMessage
from m2mpay.plain import from_plain, registered_types, to_plain
from tests.fuzz.hostile import BOMB_DEPTH, FUZZ
from tests.fuzz.wire_types import wire_messages

pytestmark = pytest.mark.timeout(60)

NAMES: Final = sorted(registered_types())

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**600), 2**600)
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=70)
    | st.sampled_from(NAMES)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["t", "channel_id", "total", "message"]) | leaves, inner, max_size=5
        )
        | st.builds(
            lambda name, rest: {**rest, "t": name},
            st.sampled_from(NAMES),
            st.dictionaries(st.text(max_size=12), inner, max_size=6),
        )
    ),
    max_leaves=30,
)


def _builds_or_refuses(value: Any) -> None:
    try:
        built = from_plain(value)
    except MalformedMessage:
        return
    assert type(built) in registered_types().values()


@given(value=values)
@FUZZ
def test_any_value_builds_a_registered_type_or_raises_malformed_message(value: Any) -> None:
    _builds_or_refuses(value)


@given(message=wire_messages, value=values, data=st.data())
@FUZZ
def test_any_value_at_any_field_of_a_message(message: Any, value: Any, data: st.DataObject) -> None:
    for binary in (True, False):
        plain = to_plain(message, binary=binary)
        plain[data.draw(st.sampled_from(sorted(plain)))] = value
        _builds_or_refuses(plain)


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _deep_received(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"t": "ack"}
    for _ in range(depth):
        value = {"t": "in.received", "sender": b"\x11" * 20, "message": value, "now_ms": 1}
    return value


@pytest.mark.parametrize(
    "value",
    [
        _deep_list(BOMB_DEPTH),
        {"t": "pay", "channel_id": _deep_list(BOMB_DEPTH)},
        {"t": "host.events", "inputs": _deep_list(BOMB_DEPTH), "head": 1},
        _deep_received(BOMB_DEPTH),
        {"t": "pay", 10**5000: 1},
        {"t": "pay", ("tuple", "key"): 1},
        {"t": "x" * 10_000_000},
        {"t": "session.error", "code": "x" * 10_000_000, "message": ""},
        {"t": "watch.error", "kind": {"unhashable": []}, "code": "", "message": ""},
        {"t": "watch.error", "kind": 10**5000, "code": "", "message": ""},
    ],
    ids=[
        "deep-list",
        "deep-list-at-bytes",
        "deep-list-at-tuple",
        "received-in-received",
        "huge-int-key",
        "tuple-key",
        "huge-type-tag",
        "huge-text",
        "unhashable-enum",
        "huge-int-enum",
    ],
)
def test_hostile_python_values_raise_malformed_message(value: Any) -> None:
    with pytest.raises(MalformedMessage) as caught:
        from_plain(value)
    assert len(str(caught.value)) < 400  # a peer's value is never echoed whole


def test_a_cyclic_value_is_refused_without_deep_recursion() -> None:
    # What a CBOR shared reference builds: the message of an `in.received` is itself.
    value: dict[str, Any] = {"t": "in.received", "sender": b"\x11" * 20, "now_ms": 1}
    value["message"] = value
    depth_before = sys.getrecursionlimit()
    with pytest.raises(MalformedMessage, match="not allowed here"):
        from_plain(value)
    assert sys.getrecursionlimit() == depth_before
