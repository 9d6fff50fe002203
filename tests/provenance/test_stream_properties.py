"""Properties of provenance streams, over generated records and generated tampering:
what is written reads back the same, and whatever a stream is cut, shuffled or bent
into, what `verify` calls verified is a prefix of the stream the author wrote."""

from __future__ import annotations

import asyncio
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2mpay.crypto import Address
from m2mpay.errors import ProvenanceError
from m2mpay.provenance import (
    AccessMode,
    MemoryStreamStore,
    MeterRecord,
    MeterUnit,
    NoteRecord,
    PaymentRecord,
    PriceRecord,
    ProvenanceStream,
    StreamRecord,
    StreamWriter,
    verify,
)
from m2mpay.provenance.stream_records import decode_record, encode_payload
from tests.provenance.streams_kit import AUTHOR, Clock, records

SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
SAFE = (1 << 53) - 1
UINT256 = (1 << 256) - 1

units = st.sampled_from(list(MeterUnit))
addresses = st.binary(min_size=20, max_size=20).map(Address)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=1000)
stream_records: st.SearchStrategy[StreamRecord] = st.one_of(
    st.builds(MeterRecord, units, st.integers(0, SAFE), st.integers(0, SAFE), st.integers(0, SAFE)),
    st.builds(PriceRecord, units, st.integers(0, UINT256), addresses),
    st.builds(
        PaymentRecord,
        st.binary(min_size=32, max_size=32),
        addresses,
        st.integers(0, UINT256),
        st.integers(0, UINT256),
    ),
    st.builds(NoteRecord, texts),
)


@given(record=stream_records)
@SETTINGS
def test_a_record_has_one_encoding_and_reads_back_equal(record: StreamRecord) -> None:
    encoded = encode_payload(record)
    assert decode_record(encoded) == record
    assert encode_payload(decode_record(encoded)) == encoded


def test_text_json_cannot_carry_is_refused_when_written() -> None:
    with pytest.raises(ProvenanceError) as caught:
        encode_payload(NoteRecord("\ud800"))
    assert caught.value.code == "bad_record"


async def _write(
    access: AccessMode, written: list[StreamRecord]
) -> tuple[bytes | None, ProvenanceStream]:
    async with MemoryStreamStore() as store:
        writer = await StreamWriter.create(
            store, AUTHOR, purpose="prop", access=access, now_ms=Clock()
        )
        await writer.append_many(written)
        key = None if access is AccessMode.PUBLIC else writer.key()
        return key, await ProvenanceStream.load(store, writer.stream_id)


@given(
    written=st.lists(stream_records, max_size=8),
    access=st.sampled_from([AccessMode.PUBLIC, AccessMode.RESTRICTED]),
)
@SETTINGS
def test_what_a_writer_writes_verifies_and_reads_back(
    written: list[StreamRecord], access: AccessMode
) -> None:
    key, stream = asyncio.run(_write(access, written))
    verified = stream.verify(key, count=len(written))
    assert verified.ok, verified.problem
    assert verified.records == written


@cache
def _original() -> tuple[bytes, ProvenanceStream]:
    key, stream = asyncio.run(_write(AccessMode.RESTRICTED, records(8)))
    assert key is not None
    return key, stream


def _is_prefix(verified: tuple[object, ...], stream: ProvenanceStream) -> bool:
    return [v.message for v in verified] == list(stream.messages[: len(verified)])  # type: ignore[attr-defined]


@given(positions=st.lists(st.integers(0, 7), max_size=12))
@SETTINGS
def test_any_rearrangement_verifies_only_as_a_prefix_of_the_true_stream(
    positions: list[int],
) -> None:
    key, stream = _original()
    verified = verify(stream.root, [stream.messages[i] for i in positions], key)
    assert _is_prefix(verified.messages, stream)
    assert verified.ok == (positions == list(range(len(positions))))
    if not verified.ok:
        assert verified.problem is not None
        assert verified.problem.position is not None
        assert verified.problem.position >= len(verified.messages)


@given(data=st.data())
@SETTINGS
def test_any_bytes_changed_anywhere_never_verify_as_written(data: st.DataObject) -> None:
    key, stream = _original()
    raw = [m.raw for m in stream.messages]
    target = data.draw(st.integers(0, len(raw) - 1))
    start = data.draw(st.integers(0, len(raw[target])))
    patch = data.draw(st.binary(max_size=16))
    cut = data.draw(st.integers(0, 16))
    changed = raw[target][:start] + patch + raw[target][start + cut :]
    raw[target] = changed
    verified = verify(stream.root, raw, key)
    assert _is_prefix(verified.messages, stream)
    if changed == stream.messages[target].raw:
        assert verified.ok
    else:
        assert not verified.ok
        assert len(verified.messages) == target
