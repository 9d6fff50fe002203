"""Device-bus messages (JSON text from a device over the bus WebSocket) against hostile
input: `parse_device_message` returns a device message or raises `BadMessage` (a
`MalformedMessage`), and what it accepts always writes back as the same JSON."""

from __future__ import annotations

from typing import Any, Final

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.bus.messages import (
    MAX_DATA_DEPTH,
    MAX_MESSAGE_BYTES,
    BadMessage,
    DeviceMessage,
    canonical_json,
    parse_device_message,
)
from m2mpay.errors import MalformedMessage
from tests.fuzz.hostile import (
    FUZZ,
    TEN_MB,
    hostile_json,
    json_nesting_bombs,
    peak_memory,
    truncations,
)

pytestmark = pytest.mark.timeout(60)

ADDRESS: Final = "0x" + "ab" * 20
VALID: Final[list[dict[str, Any]]] = [
    {
        "type": "login",
        "address": ADDRESS,
        "challenge": "0x" + "00" * 32,
        "signature": "0x" + "11" * 65,
    },
    {
        "type": "device_register",
        "name": "hall lamp",
        "services": [
            {"name": "light", "unit": "s", "price": "5", "asset": ADDRESS, "kind": "actuation"}
        ],
    },
    {"type": "command_ack", "id": "0x" + "22" * 16, "ok": False, "error": "jammed"},
    {
        "type": "device_status",
        "state": "ok",
        "sessions": [
            {"session": "0x" + "33" * 32, "service": "light", "delivered": 3, "active": True}
        ],
        "detail": {"temp": 21.5, "fw": "1.2"},
    },
    {"type": "telemetry", "seq": 1, "at_ms": 1_700_000_000_000, "data": {"wh": 12, "v": [1, 2]}},
]


def _refused(raw: bytes | str) -> BadMessage:
    with pytest.raises(BadMessage) as caught:
        parse_device_message(raw)
    assert isinstance(caught.value, MalformedMessage)
    return caught.value


def _parsed_or_refused(raw: bytes | str) -> None:
    try:
        message = parse_device_message(raw)
    except BadMessage as refusal:
        refusal.reply()  # every refusal can be answered to the device
        return
    assert isinstance(message, DeviceMessage)
    canonical_json(message.model_dump())  # what is accepted can be stored and shown


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(raw=st.binary(max_size=600) | st.text(max_size=300))
@FUZZ
def test_any_bytes_or_text_parse_or_raise_bad_message(raw: bytes | str) -> None:
    _parsed_or_refused(raw)


@given(base=st.sampled_from(VALID), value=json_values, data=st.data())
@FUZZ
def test_any_value_at_any_field_parses_or_raises_bad_message(
    base: dict[str, Any], value: Any, data: st.DataObject
) -> None:
    message = dict(base)
    message[data.draw(st.sampled_from(sorted(message)))] = value
    _parsed_or_refused(orjson.dumps(message))


@pytest.mark.parametrize("base", VALID, ids=lambda base: str(base["type"]))
def test_every_truncation_and_hostile_variant_of_a_message_is_refused(base: dict[str, Any]) -> None:
    frame = orjson.dumps(base)
    assert parse_device_message(frame).type == base["type"]
    for prefix in truncations(frame):
        _refused(prefix)
    for variant in hostile_json(frame):
        _refused(variant)


@pytest.mark.parametrize(
    "frame", json_nesting_bombs(), ids=["lists", "objects", "open-lists", "open-objects"]
)
def test_nesting_bombs_are_refused(frame: bytes) -> None:
    assert _refused(frame).code == "too_large"
    inside = frame[: MAX_MESSAGE_BYTES - 100]
    _refused(inside)  # within the limit, the parser's own depth limit decides
    _refused(b'{"type":"telemetry","seq":1,"at_ms":1,"data":{"x":' + inside + b"}}")


def test_data_nested_past_the_limit_is_refused() -> None:
    for depth, accepted in ((MAX_DATA_DEPTH - 1, True), (MAX_DATA_DEPTH + 1, False)):
        nested = b"[" * depth + b"]" * depth
        frame = b'{"type":"telemetry","seq":1,"at_ms":1,"data":{"x":' + nested + b"}}"
        if accepted:
            assert parse_device_message(frame).type == "telemetry"
        else:
            assert "deeper" in _refused(frame).message


@pytest.mark.parametrize(
    "value",
    [b"NaN", b"Infinity", b"-Infinity", b"1" + b"0" * 30, b"-" + b"9" * 30, b"1" + b"0" * 4400],
    ids=["nan", "inf", "-inf", "10^30", "-10^30", "10^4400"],
)
def test_numbers_json_cannot_write_back_are_refused(value: bytes) -> None:
    # Before, NaN and Infinity were taken (and stored as null), and an integer past
    # 64 bits raised orjson's TypeError out of the validator instead of BadMessage.
    telemetry = b'{"type":"telemetry","seq":1,"at_ms":1,"data":{"x":[' + value + b"]}}"
    status = b'{"type":"device_status","detail":{"x":' + value + b"}}"
    for frame in (telemetry, status):
        assert _refused(frame).code in ("invalid_message", "invalid_json")
    for field in (b"seq", b"at_ms"):
        _refused(
            b'{"type":"telemetry","seq":1,"at_ms":1,"data":{},"' + field + b'":' + value + b"}"
        )


def test_invalid_utf8_and_lone_surrogates_are_refused() -> None:
    assert _refused(b'{"type":"command_ack","id":"\xff","ok":true}').code == "invalid_json"
    assert _refused('{"type":"command_ack","id":"\ud800","ok":true}').code == "invalid_json"
    assert _refused(b'{"type":"command_ack","id":"\\ud800","ok":true}').code == "invalid_json"


def test_a_duplicate_key_means_its_last_value() -> None:
    frame = b'{"type":"telemetry","seq":5,"at_ms":1,"data":{},"seq":6}'
    message = parse_device_message(frame)
    assert message.type == "telemetry"
    assert message.seq == 6


def test_size_is_counted_in_utf8_bytes_before_parsing() -> None:
    # 20,000 four-byte characters: under the limit as text, over it as UTF-8.
    text = '{"type":"command_ack","id":"' + "\U0001f600" * 20_000 + '","ok":true}'
    assert len(text) < MAX_MESSAGE_BYTES
    assert _refused(text).code == "too_large"


@pytest.mark.parametrize("raw", [b"x" * TEN_MB, "x" * TEN_MB], ids=["bytes", "text"])
def test_ten_megabytes_are_refused_before_parsing_in_bounded_memory(raw: bytes | str) -> None:
    assert _refused(raw).code == "too_large"
    assert peak_memory(lambda: parse_device_message(raw)) < 64 * 1024


def test_a_maximal_hostile_message_parses_in_bounded_memory() -> None:
    count = (MAX_MESSAGE_BYTES - 100) // 2
    frame = b'{"type":"telemetry","seq":1,"at_ms":1,"data":{"x":[' + b"0," * count + b"0]}}"
    assert len(frame) <= MAX_MESSAGE_BYTES
    assert _refused(frame).code == "invalid_message"  # more than 8 KiB of data
    # pydantic's objects and its error report take ~130 times the input here: bounded
    # by the size limit, which is what keeps it small.
    assert peak_memory(lambda: parse_device_message(frame)) < 256 * MAX_MESSAGE_BYTES


def test_non_text_is_refused() -> None:
    assert _refused(12).code == "invalid_message"  # type: ignore[arg-type]
