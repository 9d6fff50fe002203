"""Anchor proofs against hostile input: `decode_anchor_proof` returns a proof or raises
`StreamInvalid` whatever JSON it is given; a proof with bytes changed never checks
offline as proving another message; a stream file's anchor section reads or is refused,
in bounded memory."""

from __future__ import annotations

import asyncio
import io
from functools import cache
from typing import Final

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.crypto import Address, merkle_proof, merkle_root
from m2mpay.provenance import AccessMode, MemoryStreamStore, ProvenanceStream, StreamWriter
from m2mpay.provenance.anchor_proof import AnchorProof, decode_anchor_proof
from m2mpay.provenance.records import stream_leaf
from m2mpay.provenance.stream_file import read_stream_file, stream_file_lines
from m2mpay.provenance.stream_format import StreamInvalid, decode_message
from tests.fuzz.hostile import FUZZ, TEN_MB, json_nesting_bombs, peak_memory
from tests.provenance.streams_kit import AUTHOR, Clock, records

pytestmark = pytest.mark.timeout(60)

CODES: Final = {"malformed", "unknown_version", "truncated"}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)


@cache
def _proved() -> tuple[ProvenanceStream, AnchorProof]:
    """A stream of 4 messages and the proof of its message 1 by its head, in a tree of
    5 leaves (built here: the offline checks need no chain)."""

    async def write() -> ProvenanceStream:
        async with MemoryStreamStore() as store:
            writer = await StreamWriter.create(
                store, AUTHOR, purpose="fuzz", access=AccessMode.PUBLIC, now_ms=Clock()
            )
            await writer.append_many(records(4))
            return await ProvenanceStream.load(store, writer.stream_id)

    stream = asyncio.run(write())
    head = stream.messages[-1]
    leaves = [bytes([n]) * 32 for n in range(4)]
    leaves.insert(2, stream_leaf(head.stream_id, head.index, head.hash))
    proof = AnchorProof(
        message=stream.messages[1].raw,
        chain=tuple(m.raw for m in stream.messages[2:]),
        batch=3,
        position=2,
        count=5,
        siblings=tuple(merkle_proof(leaves, 2)),
        root=merkle_root(leaves),
        anchor=Address(bytes([1]) * 20),
        chain_id=31337,
        submitter=Address(bytes([2]) * 20),
        tx_hash=bytes([3]) * 32,
        block_number=12,
    )
    assert proof.check_offline()[1] is None
    return stream, proof


def _decodes_or_refuses(value: object) -> AnchorProof | None:
    try:
        return decode_anchor_proof(value)
    except StreamInvalid as error:
        assert error.code in CODES  # noqa: PT017 (any value: either outcome)
        return None


@given(value=JSON)
@FUZZ
def test_any_json_decodes_or_is_refused(value: object) -> None:
    _decodes_or_refuses(value)
    _, proof = _proved()
    if isinstance(value, dict):
        _decodes_or_refuses({**proof.to_dict(), **value})


@given(field=st.sampled_from(sorted(_proved()[1].to_dict())), value=JSON)
@FUZZ
def test_a_field_replaced_by_anything_is_refused_or_still_a_proof(
    field: str, value: object
) -> None:
    _, proof = _proved()
    decoded = _decodes_or_refuses({**proof.to_dict(), field: value})
    if decoded is not None:
        decoded.check_offline()  # never raises


@given(data=st.data())
@FUZZ
def test_a_proof_with_bytes_changed_never_proves_another_message(data: st.DataObject) -> None:
    stream, proof = _proved()
    text = orjson.dumps(proof.to_dict())
    start = data.draw(st.integers(0, len(text) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=8))
    try:
        value = orjson.loads(text[:start] + patch + text[start + len(patch) :])
    except orjson.JSONDecodeError:
        return
    decoded = _decodes_or_refuses(value)
    if decoded is None:
        return
    message, forged = decoded.check_offline()
    if forged is None:
        assert message is not None
        assert message.raw == stream.messages[1].raw


def _file(stream: ProvenanceStream, proof: AnchorProof) -> bytes:
    return b"".join(stream_file_lines(stream.root, list(stream.messages), [proof]))


@given(data=st.data())
@FUZZ
def test_a_stream_file_with_anchors_changed_reads_or_is_refused(data: st.DataObject) -> None:
    stream, proof = _proved()
    original = _file(stream, proof)
    start = data.draw(st.integers(max(0, len(original) - 3000), len(original) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=16))
    changed = original[:start] + patch + original[start + len(patch) :]
    try:
        read = read_stream_file(io.BytesIO(changed))
    except StreamInvalid as error:
        assert error.code in CODES  # noqa: PT017
        return
    for index in range(len(read.messages)):
        made = read.anchor_proof(index)
        if made is not None:
            message, forged = made.check_offline()
            if forged is None:
                assert message is not None
                assert message.raw == stream.messages[index].raw


def test_a_file_anchor_reads_back_and_proves_each_message_it_covers() -> None:
    stream, proof = _proved()
    read = read_stream_file(io.BytesIO(_file(stream, proof)))
    (head_proof,) = read.anchors
    assert decode_message(head_proof.message).index == 3
    for index in range(4):
        made = read.anchor_proof(index)
        assert made is not None
        assert made.check_offline()[1] is None


def test_bombs_endless_lines_and_missing_anchors_in_a_file_are_refused() -> None:
    stream, proof = _proved()
    lines = _file(stream, proof).split(b"\n")
    body = b"\n".join(lines[:-2]) + b"\n"  # the anchor line dropped
    with pytest.raises(StreamInvalid) as caught:
        read_stream_file(io.BytesIO(body))
    assert caught.value.code == "truncated"
    for bomb in json_nesting_bombs():
        with pytest.raises(StreamInvalid):
            read_stream_file(io.BytesIO(body + b'{"anchor":' + bomb + b"}\n"))
    endless = body + b'{"anchor":{"message":"0x' + b"00" * TEN_MB
    with pytest.raises(StreamInvalid, match="longer than"):
        read_stream_file(io.BytesIO(endless))
    chained = dict(proof.to_dict())
    with pytest.raises(StreamInvalid, match="no chain"):
        read_stream_file(io.BytesIO(body + orjson.dumps({"anchor": chained}) + b"\n"))
    huge = {**proof.to_dict(), "chain": ["0x00"] * 200_000}
    with pytest.raises(StreamInvalid, match="at most"):
        decode_anchor_proof(huge)
    assert peak_memory(lambda: _decodes_or_refuses(huge)) < 64_000
