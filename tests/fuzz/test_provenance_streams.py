"""Provenance streams against hostile input: every decoder of a stream (a root, a
message, a record, a key grant, a stream file) returns a value or raises
`StreamInvalid`, whatever the bytes, in bounded memory; `verify` never raises over what
it is given and never calls verified what the author did not write."""

from __future__ import annotations

import asyncio
import io
from functools import cache
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.crypto import Address
from m2mpay.errors import ProvenanceError
from m2mpay.provenance import (
    AccessMode,
    MemoryStreamStore,
    ProvenanceStream,
    StreamInvalid,
    StreamWriter,
    decode_message,
    decode_root,
    read_stream_file,
    verify,
)
from m2mpay.provenance.session_streams import StreamGiven, open_shares, reader_key
from m2mpay.provenance.stream_file import stream_file_lines
from m2mpay.provenance.stream_format import MAX_MESSAGE_SIZE, MAX_ROOT_SIZE
from m2mpay.provenance.stream_records import decode_key_grant, decode_record, encode_payload
from tests.fuzz.hostile import (
    FUZZ,
    TEN_MB,
    hostile_json,
    json_nesting_bombs,
    peak_memory,
    truncations,
)
from tests.fuzz.wire_types import instances_of
from tests.provenance.streams_kit import AUTHOR, Clock, records

pytestmark = pytest.mark.timeout(60)

DECODERS: Final = (decode_message, decode_root, decode_record, decode_key_grant)


@cache
def _stream() -> tuple[bytes, ProvenanceStream]:
    async def write() -> tuple[bytes, ProvenanceStream]:
        async with MemoryStreamStore() as store:
            writer = await StreamWriter.create(
                store, AUTHOR, purpose="fuzz", access=AccessMode.RESTRICTED, now_ms=Clock()
            )
            await writer.append_many(records(4))
            return writer.key(), await ProvenanceStream.load(store, writer.stream_id)

    return asyncio.run(write())


def _decodes_or_refuses(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except StreamInvalid as error:
            assert error.code in {  # noqa: PT017 (any bytes: either outcome)
                "malformed",
                "unknown_version",
                "truncated",
                "bad_payload",
            }


@given(data=st.binary(max_size=MAX_ROOT_SIZE + 300))
@FUZZ
def test_any_bytes_decode_or_are_refused(data: bytes) -> None:
    _decodes_or_refuses(data)
    _decodes_or_refuses(b"M2PM\x01" + data)
    _decodes_or_refuses(b"M2PR\x01" + data)


@given(data=st.data())
@FUZZ
def test_a_real_message_with_bytes_changed_never_verifies_as_written(
    data: st.DataObject,
) -> None:
    key, stream = _stream()
    raw = [m.raw for m in stream.messages]
    target = data.draw(st.integers(0, len(raw) - 1))
    start = data.draw(st.integers(0, len(raw[target]) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=16))
    raw[target] = raw[target][:start] + patch + raw[target][start + len(patch) :]
    verified = verify(stream.root.raw, raw, key)
    written = list(stream.messages)
    assert [v.message for v in verified.messages] == written[: len(verified.messages)]
    assert verified.ok == (raw[target] == stream.messages[target].raw)


@given(items=st.lists(st.binary(max_size=400), max_size=6), root=st.binary(max_size=400))
@FUZZ
def test_verify_takes_any_bytes_and_names_a_problem(items: list[bytes], root: bytes) -> None:
    key, stream = _stream()
    for given_root in (root, stream.root.raw):
        verified = verify(given_root, items, key)
        assert verified.ok == (given_root == stream.root.raw and not items)
        assert verified.messages == ()


def test_every_prefix_of_a_real_root_and_message_is_refused() -> None:
    _, stream = _stream()
    for frame, decode in ((stream.root.raw, decode_root), (stream.messages[0].raw, decode_message)):
        for prefix in truncations(frame):
            with pytest.raises(StreamInvalid) as caught:
                decode(prefix)
            assert caught.value.code in ("truncated", "malformed")


def test_hostile_json_and_nesting_bombs_are_refused_as_payloads() -> None:
    envelope = encode_payload(records(4)[3])
    for data in [*hostile_json(envelope), *json_nesting_bombs()]:
        for decode in (decode_record, decode_key_grant):
            with pytest.raises(StreamInvalid) as caught:
                decode(data)
            assert caught.value.code == "bad_payload"


def _file(stream: ProvenanceStream) -> bytes:
    return b"".join(stream_file_lines(stream.root, list(stream.messages)))


@given(data=st.data())
@FUZZ
def test_a_stream_file_with_bytes_changed_reads_or_is_refused(data: st.DataObject) -> None:
    key, stream = _stream()
    original = _file(stream)
    start = data.draw(st.integers(0, len(original) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=16))
    changed = original[:start] + patch + original[start + len(patch) :]
    try:
        read = read_stream_file(io.BytesIO(changed))
    except StreamInvalid:
        return
    verified = read.verify(key)
    assert [v.message for v in verified.messages] == list(stream.messages[: len(verified.messages)])


def test_nesting_bombs_and_endless_lines_in_a_stream_file_are_refused() -> None:
    _, stream = _stream()
    header = _file(stream).split(b"\n")[0] + b"\n"
    for bomb in json_nesting_bombs():
        for data in (bomb + b"\n", header + bomb + b"\n"):
            with pytest.raises(StreamInvalid):
                read_stream_file(io.BytesIO(data))
    endless = header + b'{"message":"0x' + b"00" * TEN_MB
    with pytest.raises(StreamInvalid, match="longer than"):
        read_stream_file(io.BytesIO(endless))


def test_ten_megabytes_are_refused_by_their_size_in_bounded_memory() -> None:
    huge = b"M2PM\x01" + bytes(TEN_MB)
    for decode in DECODERS:
        with pytest.raises(StreamInvalid):
            decode(huge)
        assert peak_memory(lambda decode=decode: decode(huge)) < 64_000  # type: ignore[misc]
    assert MAX_MESSAGE_SIZE < 20_000


@given(given_=instances_of(StreamGiven), seller=st.binary(min_size=20, max_size=20))
@FUZZ
def test_a_stream_given_by_anyone_opens_or_is_refused_by_name(
    given_: StreamGiven, seller: bytes
) -> None:
    """What a seller answers is checked whole before a buyer keeps any of it."""
    try:
        open_shares(given_, Address(seller), reader_key(AUTHOR))
    except ProvenanceError as error:
        assert error.code == "bad_share"  # noqa: PT017 (any answer: either outcome)
