"""Codecs: every message type round-trips in JSON and CBOR; hostile bytes only ever
raise `MalformedMessage`."""

from __future__ import annotations

import dataclasses
import enum
import typing
from concurrent.futures import ThreadPoolExecutor
from typing import Any, get_args, get_origin

import cbor2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2mpay.channel.messages import PROTOCOL_VERSION, Message, PaymentMessage
from m2mpay.crypto import Address, PrivateKey, Signature
from m2mpay.errors import MalformedMessage
from m2mpay.plain import Bytes32, Text, Uint64, Uint256, to_plain
from m2mpay.wire import CODECS, MAX_MESSAGE_SIZE, CborCodec, Codec, JsonCodec, codec_by_name

MESSAGE_TYPES: tuple[type[Any], ...] = get_args(Message)
CODEC_LIST = [JsonCodec(), CborCodec()]
_signer = PrivateKey(bytes(31) + b"\x07")

addresses = st.binary(min_size=20, max_size=20).map(Address)
signatures = st.binary(min_size=32, max_size=32).map(_signer.sign_digest)
bytes32 = st.binary(min_size=32, max_size=32)
uint64 = st.integers(0, 2**64 - 1)
uint256 = st.integers(0, 2**256 - 1)
texts = st.text(max_size=1000)


def _strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    known: list[tuple[Any, st.SearchStrategy[Any]]] = [
        (Uint256, uint256),
        (Uint64, uint64),
        (Bytes32, bytes32),
        (Text, texts),
        (Address, addresses),
        (Signature, signatures),
    ]
    for declared, strategy in known:
        if hint == declared:
            return strategy
    options = [arg for arg in get_args(hint) if arg is not type(None)]
    if type(None) in get_args(hint) and len(options) == 1:
        return st.none() | _strategy_for(options[0])
    if get_origin(hint) is tuple:
        return st.lists(_strategy_for(get_args(hint)[0]), max_size=5).map(tuple)
    if dataclasses.is_dataclass(hint):
        return messages_of(typing.cast("type[Any]", hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    plain_types: dict[Any, st.SearchStrategy[Any]] = {
        bool: st.booleans(),
        int: st.integers(-(2**70), 2**70),
        str: st.text(max_size=50),
        bytes: st.binary(max_size=50),
    }
    if hint in plain_types:
        return plain_types[hint]
    raise AssertionError(f"no strategy for field type {hint!r}; extend the test")


def messages_of(cls: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return st.builds(cls, **{name: _strategy_for(hint) for name, hint in hints.items()})


any_message = st.one_of([messages_of(cls) for cls in MESSAGE_TYPES])


def payment_with_seq(seq: int) -> PaymentMessage:
    return PaymentMessage(
        channel_id=bytes(range(32)),
        chain_id=1337,
        hub=Address(bytes(range(20))),
        total=10**24 + seq,
        amount=10**15,
        seq=seq,
        signature=_signer.sign_digest(bytes(32)),
    )


def payment() -> PaymentMessage:
    return payment_with_seq(7)


@pytest.mark.parametrize("cls", MESSAGE_TYPES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_message_type_round_trips(codec: Codec, cls: type[Any], data: st.DataObject) -> None:
    message = data.draw(messages_of(cls))
    encoded = codec.encode(message)
    assert isinstance(encoded, bytes)
    assert codec.decode(encoded) == message


def test_json_envelope_is_versioned_and_writes_amounts_as_decimal_strings() -> None:
    plain = orjson.loads(JsonCodec().encode(payment()))
    assert plain["v"] == PROTOCOL_VERSION
    assert plain["t"] == "pay"
    assert plain["total"] == str(10**24 + 7)
    assert plain["hub"] == Address(bytes(range(20))).checksum
    assert plain["channel_id"] == "0x" + bytes(range(32)).hex()


def test_cbor_envelope_is_versioned_and_keeps_bytes_and_integers() -> None:
    plain = cbor2.loads(CborCodec().encode(payment()))
    assert plain["v"] == PROTOCOL_VERSION
    assert plain["total"] == 10**24 + 7
    assert plain["channel_id"] == bytes(range(32))


def test_codecs_by_name() -> None:
    assert codec_by_name("json").name == "json"
    assert codec_by_name("cbor").name == "cbor"
    assert set(CODECS) == {"json", "cbor"}
    assert all(isinstance(codec, Codec) for codec in CODECS.values())
    with pytest.raises(MalformedMessage, match="unknown codec"):
        codec_by_name("xml")


def _reencode(codec: Codec, plain: Any) -> bytes:
    return orjson.dumps(plain) if codec.name == "json" else cbor2.dumps(plain)


def _valid_plain(codec: Codec) -> dict[str, Any]:
    plain = to_plain(payment(), binary=codec.name == "cbor")
    plain["v"] = PROTOCOL_VERSION
    return plain


@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
@pytest.mark.parametrize("version", [None, 0, 2, True, "1", 1.0, [1]])
def test_missing_or_other_version_is_refused(codec: Codec, version: Any) -> None:
    plain = _valid_plain(codec)
    if version is None:
        del plain["v"]
    else:
        plain["v"] = version
    with pytest.raises(MalformedMessage, match="protocol version"):
        codec.decode(_reencode(codec, plain))


@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
@pytest.mark.parametrize("top", [[], [1, 2], 1, "pay", None, 1.5])
def test_non_map_top_level_is_refused(codec: Codec, top: Any) -> None:
    with pytest.raises(MalformedMessage, match="expected a map"):
        codec.decode(_reencode(codec, top))


@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
def test_unknown_type_and_bad_fields_are_refused(codec: Codec) -> None:
    plain = _valid_plain(codec)
    with pytest.raises(MalformedMessage, match="unknown message type"):
        codec.decode(_reencode(codec, {**plain, "t": "steal"}))
    with pytest.raises(MalformedMessage, match="unknown field"):
        codec.decode(_reencode(codec, {**plain, "extra": 1}))
    with pytest.raises(MalformedMessage, match="total"):
        codec.decode(_reencode(codec, {**plain, "total": -1}))


@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
def test_frames_above_one_mebibyte_are_refused_before_parsing(codec: Codec) -> None:
    with pytest.raises(MalformedMessage, match="limit"):
        codec.decode(b" " * (MAX_MESSAGE_SIZE + 1))


@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
def test_trailing_bytes_after_the_message_are_refused(codec: Codec) -> None:
    frame = codec.encode(payment())
    assert codec.decode(frame) == payment()
    with pytest.raises(MalformedMessage):
        codec.decode(frame + b"\x00")
    with pytest.raises(MalformedMessage):
        codec.decode(frame + frame)


def test_one_cbor_codec_encodes_from_several_threads() -> None:
    codec = CborCodec()
    messages = [payment_with_seq(i) for i in range(200)]
    with ThreadPoolExecutor(4) as pool:
        frames = list(pool.map(codec.encode, messages))
    assert [codec.decode(frame) for frame in frames] == messages


@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
def test_non_bytes_input_is_refused(codec: Codec) -> None:
    with pytest.raises(MalformedMessage, match="expected bytes"):
        codec.decode("not bytes")  # type: ignore[arg-type]


HOSTILE_CBOR = [
    bytes.fromhex("c5821b7fffffffffffffff01"),  # bigfloat with a huge exponent
    bytes.fromhex("c4821b7fffffffffffffff01"),  # decimal fraction with a huge exponent
    bytes.fromhex("d81c81d81d00"),  # shared reference to a list inside itself
    bytes.fromhex("c11b7fffffffffffffff"),  # epoch datetime out of range
    bytes.fromhex("c0781a323032342d30322d33305432353a36313a36315a"),  # invalid datetime text
    bytes.fromhex("d9d9f7a0"),  # self-described CBOR around an empty map
    b"\x81" * 5000 + b"\x00",  # nesting bomb
    bytes.fromhex("bf6176"),  # indefinite map, truncated
    bytes.fromhex("a1a0a0"),  # map used as a map key
    bytes.fromhex("a2617601617401"),  # type tag that is not text
    bytes.fromhex("5b7fffffffffffffff"),  # byte string claiming 2^63 bytes
]


@pytest.mark.parametrize("frame", HOSTILE_CBOR, ids=lambda frame: frame[:6].hex())
def test_hostile_cbor_raises_only_malformed_message(frame: bytes) -> None:
    with pytest.raises(MalformedMessage):
        CborCodec().decode(frame)


@pytest.mark.parametrize(
    "frame",
    [b"", b"{", b"[" * 5000, b'{"v":1,"t":"pay"', b"\xff\xfe", b'{"v":1e400}', b"nul"],
)
def test_hostile_json_raises_only_malformed_message(frame: bytes) -> None:
    with pytest.raises(MalformedMessage):
        JsonCodec().decode(frame)


@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
@settings(max_examples=300)
@given(data=st.binary(max_size=600))
def test_random_bytes_raise_only_malformed_message(codec: Codec, data: bytes) -> None:
    try:
        decoded = codec.decode(data)
    except MalformedMessage:
        return
    assert type(decoded) in MESSAGE_TYPES


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.just(0)),
)


def _mutate(frame: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(frame)
    for kind, where, value in edits:
        if not data:
            break
        at = where % len(data)
        if kind == "flip":
            data[at] ^= value
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data.insert(at, value)
        else:
            del data[at]
    return bytes(data)


@pytest.mark.parametrize("codec", CODEC_LIST, ids=lambda codec: codec.name)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(message=any_message, edits=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_valid_frames_raise_only_malformed_message(
    codec: Codec, message: Any, edits: list[tuple[str, int, int]]
) -> None:
    frame = _mutate(codec.encode(message), edits)
    try:
        decoded = codec.decode(frame)
    except MalformedMessage:
        return
    assert type(decoded) in MESSAGE_TYPES  # a mutation may still be a valid message
