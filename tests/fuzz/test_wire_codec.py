"""The wire codecs (JSON and CBOR) against hostile frames: for any bytes, `decode` returns
a registered message or raises `MalformedMessage`, fast and in bounded memory.

Covers every type a peer may send in a session: channel messages, metered-session
messages and device-host messages (all travel through the same codecs)."""

from __future__ import annotations

import dataclasses
import io
import math
import random
import time
import typing
from typing import Any, Final

import cbor2
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.channel.messages import PROTOCOL_VERSION
from m2mpay.errors import MalformedMessage
from m2mpay.plain import Text, registered_types, to_plain, type_name
from m2mpay.wire import MAX_MESSAGE_SIZE, CborCodec, Codec, JsonCodec
from m2mpay.wire.cbor_check import MAX_BIGNUM_BYTES, check_cbor
from tests.fuzz.hostile import (
    FUZZ,
    TEN_MB,
    cbor_nesting_bombs,
    hostile_json,
    json_nesting_bombs,
    peak_memory,
    truncations,
)
from tests.fuzz.wire_types import WIRE_TYPES, instances_of, wire_messages
from tests.wire.test_codec import payment

pytestmark = pytest.mark.timeout(120)

JSON: Final = JsonCodec()
CBOR: Final = CborCodec()
CODECS: Final[list[Codec]] = [JSON, CBOR]
NAMES: Final = sorted(registered_types())


def _refused(codec: Codec, frame: bytes) -> MalformedMessage:
    with pytest.raises(MalformedMessage) as caught:
        codec.decode(frame)
    return caught.value


def _decodes_or_refuses(codec: Codec, frame: bytes) -> None:
    try:
        decoded = codec.decode(frame)
    except MalformedMessage:
        return
    assert type(decoded) in registered_types().values()


def _frame(codec: Codec, plain: Any) -> bytes:
    return orjson.dumps(plain) if codec is JSON else cbor2.dumps(plain)


def _envelope(codec: Codec, message: Any) -> dict[str, Any]:
    plain = to_plain(message, binary=codec is CBOR)
    plain["v"] = PROTOCOL_VERSION
    return plain


# -- fixed hostile frames ---------------------------------------------------------------


@pytest.mark.parametrize(
    "frame", json_nesting_bombs(), ids=["lists", "objects", "open-lists", "open-objects"]
)
def test_json_nesting_bombs_are_refused(frame: bytes) -> None:
    _refused(JSON, frame[:MAX_MESSAGE_SIZE])  # within the size limit: the parser's depth decides
    assert "limit" in str(_refused(JSON, frame + b" " * MAX_MESSAGE_SIZE))


@pytest.mark.parametrize(
    "frame", cbor_nesting_bombs(), ids=["arrays", "maps", "tags", "open-arrays"]
)
def test_cbor_nesting_bombs_are_refused(frame: bytes) -> None:
    _refused(CBOR, frame)


@pytest.mark.parametrize("codec", CODECS, ids=lambda codec: codec.name)
def test_ten_megabytes_are_refused_before_parsing_in_bounded_memory(codec: Codec) -> None:
    frame = b'{"v":1,"t":"pay","x":"' + b"a" * TEN_MB + b'"}'
    assert "limit" in str(_refused(codec, frame))
    assert peak_memory(lambda: codec.decode(frame)) < 64 * 1024


@pytest.mark.parametrize("codec", CODECS, ids=lambda codec: codec.name)
def test_a_maximal_hostile_frame_decodes_in_bounded_memory(codec: Codec) -> None:
    # As many tiny items as fit in the limit: the worst case for what the parser builds.
    count = MAX_MESSAGE_SIZE // 2 - 16
    if codec is JSON:
        frame = b"[" + b"0," * count + b"0]"
    else:
        frame = b"\x9a" + (count * 2 - 8).to_bytes(4, "big") + b"\x00" * (count * 2 - 8)
    assert len(frame) <= MAX_MESSAGE_SIZE
    _refused(codec, frame)
    assert peak_memory(lambda: codec.decode(frame)) < 48 * MAX_MESSAGE_SIZE


@given(message=wire_messages)
@FUZZ
def test_hostile_json_variants_of_every_message_are_refused(message: Any) -> None:
    envelope = JSON.encode(message)
    for frame in hostile_json(envelope):
        _refused(JSON, frame)


@given(message=wire_messages)
@FUZZ
def test_every_truncation_of_a_message_is_refused(message: Any) -> None:
    for codec in CODECS:
        for prefix in truncations(codec.encode(message)):
            _refused(codec, prefix)


@pytest.mark.parametrize("codec", CODECS, ids=lambda codec: codec.name)
def test_integers_past_two_to_the_256_are_refused(codec: Codec) -> None:
    base = _envelope(codec, payment())
    for value in (2**256, 2**300, 10**4000, -(2**256), -1):
        for field in ("total", "seq", "chain_id"):
            _refused(codec, _frame(codec, {**base, field: value if codec is CBOR else str(value)}))
    if codec is CBOR:
        # A 5000-digit key fails `repr` in Python; the error must still be ours.
        keyed: dict[Any, Any] = {**base, 10**5000: 1}
        error = _refused(codec, cbor2.dumps(keyed))
        assert "bignum" in str(error)
    else:
        for digits in (b"9" * 100, b"9" * 5000, b"-" + b"9" * 5000):
            _refused(codec, orjson.dumps(base)[:-1] + b',"total":' + digits + b"}")
            _refused(codec, orjson.dumps(base)[:-1] + b',"total":"' + digits + b'"}')


def test_cbor_nan_and_infinity_are_refused() -> None:
    base = _envelope(CBOR, payment())
    for value in (math.nan, math.inf, -math.inf, 1.5):
        for field in ("total", "seq", "channel_id", "signature", "hub"):
            _refused(CBOR, cbor2.dumps({**base, field: value}))


@pytest.mark.parametrize("codec", CODECS, ids=lambda codec: codec.name)
def test_a_duplicate_key_means_its_last_value(codec: Codec) -> None:
    base = _envelope(codec, payment())
    other = dataclasses.replace(payment(), seq=8)
    frame = _frame(codec, base)
    if codec is JSON:
        again = frame[:-1] + b',"seq":8,"v":2,"v":1}'
    else:
        again = bytes([frame[0] + 3]) + frame[1:] + cbor2.dumps("seq") + b"\x08\x61v\x02\x61v\x01"
    assert codec.decode(again) == other
    _refused(codec, again[: -len(b"1}")] + b"2}" if codec is JSON else again[:-1] + b"\x02")


# Tags cbor2 gives meaning to, each around a value that makes it build something.
SEMANTIC_TAGS: Final = {
    0: "2024-01-01T00:00:00Z",
    1: 1_700_000_000,
    4: [-2, 12345],
    5: [-2, 12345],
    21: b"x",
    24: b"\xa0",
    25: 0,
    28: [0],
    29: 0,
    30: [1, 3],
    32: "http://x",
    35: "a+",
    36: "Content-Type: text/plain\n\nhi",
    37: b"\x00" * 16,
    100: 1,
    256: [1],
    258: [1, 2],
    260: b"\x7f\x00\x00\x01",
    261: {24: b"\x7f\x00\x00\x00"},
    1004: "2024-01-01",
    55799: {},
}


@pytest.mark.parametrize("tag", sorted(SEMANTIC_TAGS))
def test_every_cbor_tag_but_the_bignums_is_refused(tag: int) -> None:
    base = _envelope(CBOR, payment())
    frame = cbor2.dumps({**base, "total": cbor2.CBORTag(tag, SEMANTIC_TAGS[tag])})
    assert f"tag {tag}" in str(_refused(CBOR, frame))


def test_a_cbor_fraction_of_two_huge_bignums_is_refused_fast() -> None:
    # Before the head check cbor2 built Fraction(a, b): a gcd that took 8 s here.
    rng = random.Random(30)
    a, b = rng.getrandbits(8 * 400_000) | 1, rng.getrandbits(8 * 400_000) | 1
    frame = cbor2.dumps({"v": 1, "t": "pay", "x": cbor2.CBORTag(30, [a, b])})
    assert len(frame) < MAX_MESSAGE_SIZE
    started = time.perf_counter()
    error = _refused(CBOR, frame)
    assert time.perf_counter() - started < 0.5
    assert "tag 30" in str(error)


def test_a_bignum_longer_than_a_uint256_needs_is_refused() -> None:
    base = _envelope(CBOR, payment())
    fits = cbor2.dumps({**base, "total": 2 ** (8 * MAX_BIGNUM_BYTES) - 1})
    _refused(CBOR, fits)  # well formed, but no uint256
    check_cbor(fits, 16)
    frame = cbor2.dumps({**base, "total": 2 ** (8 * MAX_BIGNUM_BYTES)})
    assert "bignum" in str(_refused(CBOR, frame))


def test_a_cyclic_cbor_value_is_refused_without_deep_recursion() -> None:
    # A map holding itself (shareable tag 28, shared reference 29) as the message of
    # an `in.received`: decoding used to recurse until Python's limit of 100,000.
    sender = cbor2.dumps("sender") + cbor2.dumps(b"\x11" * 20) + cbor2.dumps("now_ms") + b"\x01"
    frame = (
        b"\xd8\x1c\xa5"
        + cbor2.dumps("v")
        + b"\x01"
        + cbor2.dumps("t")
        + cbor2.dumps("in.received")
        + sender
        + cbor2.dumps("message")
        + b"\xd8\x1d\x00"
    )
    assert "tag 28" in str(_refused(CBOR, frame))


@pytest.mark.parametrize("codec", CODECS, ids=lambda codec: codec.name)
def test_a_union_field_refuses_a_type_it_does_not_hold_before_building_it(codec: Codec) -> None:
    # `in.received` holds a channel message. Nested in itself it used to be decoded
    # all the way down (here to the broken innermost value) before the outer level
    # found it was no channel message: a walk as deep as the parser lets a peer nest.
    plain: dict[str, Any] = {"broken": True}
    sender = "0x" + "11" * 20 if codec is JSON else b"\x11" * 20
    for _ in range(100 if codec is JSON else 6):
        plain = {"t": "in.received", "sender": sender, "message": plain, "now_ms": 1}
    error = _refused(codec, _frame(codec, {**plain, "v": PROTOCOL_VERSION}))
    assert str(error) == "in.received.message: 'in.received' is not allowed here"


# -- wrong types at every field -----------------------------------------------------------


def _wrong_values(codec: Codec, hint: Any) -> list[Any]:
    # Each is wrong for every field type m2mpay declares: an object with an unknown
    # field, a list of such objects, a float that is no number; and a number past
    # 2**256 for every field but plain integers and text.
    wrong: list[Any] = [{"x": 1}, [{"x": 1}], {"t": "steal"}]
    if codec is CBOR:
        wrong += [math.nan, math.inf]
    if hint is not int and hint != Text and hint is not str:
        wrong.append(2**300 if codec is CBOR else str(2**300))
    return wrong


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=lambda cls: cls.__name__)
@given(data=st.data())
@settings(FUZZ, max_examples=8)
def test_a_wrong_type_at_any_field_of_any_wire_message_is_refused(
    cls: type[Any], data: st.DataObject
) -> None:
    message = data.draw(instances_of(cls))
    hints = typing.get_type_hints(cls, include_extras=True)
    for codec in CODECS:
        base = _envelope(codec, message)
        for field in dataclasses.fields(cls):
            for value in _wrong_values(codec, hints[field.name]):
                error = _refused(codec, _frame(codec, {**base, field.name: value}))
                assert type_name(message) in str(error)


# -- generated frames ---------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what orjson writes; larger ones are tested above
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**600), 2**600)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    name=st.sampled_from(NAMES),
    message=wire_messages,
    extra=st.dictionaries(st.text(max_size=12), json_values, max_size=3),
    json_value=json_values,
    cbor_value=cbor_values,
    data=st.data(),
)
@FUZZ
def test_messages_with_generated_fields_decode_or_raise_malformed_message(
    name: str,
    message: Any,
    extra: dict[str, Any],
    json_value: Any,
    cbor_value: Any,
    data: st.DataObject,
) -> None:
    for codec, value in ((JSON, json_value), (CBOR, cbor_value)):
        plain = {**_envelope(codec, message), "t": name, **extra}
        plain[data.draw(st.sampled_from(sorted(plain)))] = value
        _decodes_or_refuses(codec, _frame(codec, plain))


@given(data=st.binary(max_size=2000))
@FUZZ
def test_check_cbor_never_raises_anything_but_malformed_message(data: bytes) -> None:
    try:
        check_cbor(data, 16)
    except MalformedMessage:
        return
    # What passes is one item, nothing after it (cbor2 may still refuse its content,
    # invalid UTF-8 in a text string say, which the codec reports as malformed).
    buffer = io.BytesIO(data)
    try:
        cbor2.CBORDecoder(buffer).decode()
    except cbor2.CBORDecodeError:
        return
    assert buffer.tell() == len(data)


@given(message=wire_messages)
@FUZZ
def test_check_cbor_accepts_everything_the_codec_writes(message: Any) -> None:
    frame = CBOR.encode(message)
    check_cbor(frame, 16)
    assert CBOR.decode(frame) == message
