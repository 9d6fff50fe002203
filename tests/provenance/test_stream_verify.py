"""Verifying provenance streams: every bad input is detected and named, at the first
message it touches, and nothing from there on counts as verified."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from m2mpay.crypto import channel_domain, session_receipt_digest
from m2mpay.provenance import (
    AccessMode,
    KeyGrant,
    MemoryStreamStore,
    MeterRecord,
    MeterUnit,
    ProblemCode,
    ProvenanceStream,
    ReadKey,
    ReceiptRecord,
    StreamInvalid,
    StreamWriter,
    Totals,
    Verified,
    decode_message,
    verify,
)
from m2mpay.provenance.stream_format import MessageKind, make_root
from tests.provenance.streams_kit import AUTHOR, OTHER, TOKEN, Clock, forge, records

COUNT = 6


async def _written(
    access: AccessMode = AccessMode.RESTRICTED, count: int = COUNT
) -> tuple[StreamWriter, ProvenanceStream]:
    store = MemoryStreamStore()
    await store.open()
    writer = await StreamWriter.create(
        store, AUTHOR, purpose="session", access=access, now_ms=Clock()
    )
    await writer.append_many(records(count))
    return writer, await ProvenanceStream.load(store, writer.stream_id)


def _stopped(verified: Verified, code: ProblemCode, position: int | None, kept: int) -> None:
    assert verified.problem is not None, "the stream verified"
    assert (verified.problem.code, verified.problem.position) == (code, position), verified.problem
    assert not verified.ok
    assert len(verified.messages) == kept
    with pytest.raises(StreamInvalid) as caught:
        verified.raise_if_invalid()
    assert caught.value.code == code.value


@pytest.mark.parametrize("access", list(AccessMode))
async def test_a_stream_of_each_mode_verifies_and_reads_back_its_records(
    access: AccessMode,
) -> None:
    writer, stream = await _written(access)
    key: ReadKey | None = None if access is AccessMode.PUBLIC else writer.key()
    if access is AccessMode.SUBSCRIBERS:
        key = {0: writer.key()}
    verified = stream.verify(key, count=len(stream.messages))
    assert verified.ok, verified.problem
    assert verified.records == records(COUNT)
    indexes = [m.message.index for m in verified.messages]
    assert indexes == list(range(len(stream.messages)))
    verified.raise_if_invalid()  # nothing to raise


async def test_every_flipped_byte_of_a_message_is_named_at_that_message() -> None:
    writer, stream = await _written()
    target = 3
    raw = stream.messages[target].raw
    for offset in range(len(raw)):
        flipped = bytearray(raw)
        flipped[offset] ^= 0xFF
        messages = [m.raw for m in stream.messages]
        messages[target] = bytes(flipped)
        verified = verify(stream.root, messages, writer.key())
        if offset < 4:
            codes = {ProblemCode.MALFORMED}
        elif offset == 4:
            codes = {ProblemCode.UNKNOWN_VERSION}
        elif 110 <= offset < 114:  # the payload's length
            codes = {ProblemCode.TRUNCATED, ProblemCode.MALFORMED}
        else:
            codes = {ProblemCode.BAD_SIGNATURE}
        assert verified.problem is not None
        _stopped(verified, verified.problem.code, target, target)
        assert verified.problem.code in codes, (offset, verified.problem)


async def test_every_flipped_byte_of_the_root_is_named_at_the_root() -> None:
    writer, stream = await _written()
    raw = stream.root.raw
    purpose_size_at = 66
    links_count_at = 67 + len(stream.root.purpose)
    for offset in range(len(raw)):
        flipped = bytearray(raw)
        flipped[offset] ^= 0xFF
        verified = verify(bytes(flipped), stream.messages, writer.key())
        assert verified.problem is not None
        assert verified.problem.position is None
        assert verified.messages == ()
        if offset < 4:
            assert verified.problem.code is ProblemCode.MALFORMED
        elif offset == 4:
            assert verified.problem.code is ProblemCode.UNKNOWN_VERSION
        elif offset in (purpose_size_at, links_count_at):
            assert verified.problem.code in (ProblemCode.MALFORMED, ProblemCode.TRUNCATED)
        else:
            assert verified.problem.code is ProblemCode.BAD_SIGNATURE, offset


async def test_reordered_dropped_and_replayed_messages_are_named() -> None:
    writer, stream = await _written()
    key = writer.key()
    raw = [m.raw for m in stream.messages]
    swapped = [*raw[:2], raw[3], raw[2], *raw[4:]]
    _stopped(verify(stream.root, swapped, key), ProblemCode.REORDERED, 2, 2)
    dropped = [*raw[:2], *raw[3:]]
    _stopped(verify(stream.root, dropped, key), ProblemCode.GAP, 2, 2)
    replayed = [*raw, raw[1]]
    _stopped(verify(stream.root, replayed, key), ProblemCode.DUPLICATE, COUNT, COUNT)
    again = [*raw[:3], raw[2], *raw[3:]]
    _stopped(verify(stream.root, again, key), ProblemCode.DUPLICATE, 3, 3)


async def test_a_message_of_another_stream_is_named_wrong_stream() -> None:
    writer, stream = await _written()
    _other_writer, other = await _written()
    # The same author, the same index and key derivation: only the stream differs.
    mixed = [stream.messages[0], other.messages[1]]
    _stopped(verify(stream.root, mixed, writer.key()), ProblemCode.WRONG_STREAM, 1, 1)
    # Index 1 of another stream later on does not make a gap look like a reordering.
    gap = [stream.messages[0], stream.messages[2], other.messages[1]]
    _stopped(verify(stream.root, gap, writer.key()), ProblemCode.GAP, 1, 1)
    shown = verify(other.root, other.messages, stream_id=stream.stream_id)
    _stopped(shown, ProblemCode.WRONG_STREAM, None, 0)


async def test_a_message_signed_by_another_key_is_named() -> None:
    _writer, stream = await _written(AccessMode.PUBLIC)
    last = stream.messages[-1]
    by_other = forge(OTHER, stream.stream_id, COUNT, last.hash)
    _stopped(
        verify(stream.root, [*stream.messages, by_other]), ProblemCode.WRONG_AUTHOR, COUNT, COUNT
    )
    posing = forge(OTHER, stream.stream_id, COUNT, last.hash, signer_field=AUTHOR.address)
    _stopped(
        verify(stream.root, [*stream.messages, posing]), ProblemCode.BAD_SIGNATURE, COUNT, COUNT
    )
    # A root that names the author but is signed by someone else is not the author's.
    forged_root = make_root(OTHER, AccessMode.PUBLIC, "session", 1, bytes(32))
    tampered = bytearray(forged_root.raw)
    tampered[5:25] = AUTHOR.address
    _stopped(verify(bytes(tampered), []), ProblemCode.BAD_SIGNATURE, None, 0)


async def test_an_inserted_fork_unverifies_the_index_both_claim() -> None:
    _writer, stream = await _written(AccessMode.PUBLIC)
    fork = forge(AUTHOR, stream.stream_id, 2, stream.messages[1].hash)
    inserted = [*stream.messages[:2], fork, *stream.messages[2:]]
    # The fork verifies in its place; its twin shows that two messages claim index 2,
    # and neither (nor anything after) counts as verified.
    _stopped(verify(stream.root, inserted), ProblemCode.INSERTED, 3, 2)
    substituted = [*stream.messages[:2], fork, *stream.messages[3:]]
    _stopped(verify(stream.root, substituted), ProblemCode.BROKEN_CHAIN, 3, 3)


async def test_a_chain_that_does_not_continue_or_goes_back_in_time_is_named() -> None:
    _writer, stream = await _written(AccessMode.PUBLIC)
    last = stream.messages[-1]
    unlinked = forge(AUTHOR, stream.stream_id, COUNT, bytes(32), timestamp_ms=last.timestamp_ms)
    _stopped(
        verify(stream.root, [*stream.messages, unlinked]), ProblemCode.BROKEN_CHAIN, COUNT, COUNT
    )
    earlier = forge(AUTHOR, stream.stream_id, COUNT, last.hash, timestamp_ms=1)
    _stopped(
        verify(stream.root, [*stream.messages, earlier]), ProblemCode.TIME_BACKWARDS, COUNT, COUNT
    )
    first = forge(AUTHOR, stream.stream_id, 0, bytes(32))
    _stopped(verify(stream.root, [first]), ProblemCode.BROKEN_CHAIN, 0, 0)


async def test_wrong_and_missing_keys_are_named_and_unread_payloads_still_verify() -> None:
    _writer, stream = await _written()
    _stopped(stream.verify(), ProblemCode.MISSING_KEY, 0, 0)
    _stopped(stream.verify(bytes(32)), ProblemCode.WRONG_KEY, 0, 0)
    unread = stream.verify(payloads=False)
    assert unread.ok
    assert [m.content for m in unread.messages] == [None] * COUNT
    _stopped(stream.verify(b"short"), ProblemCode.WRONG_KEY, 0, 0)  # a QR code cut short


async def test_a_truncated_message_or_stream_is_named_truncated() -> None:
    writer, stream = await _written()
    raw = [m.raw for m in stream.messages]
    cut = [*raw[:-1], raw[-1][:100]]
    _stopped(verify(stream.root, cut, writer.key()), ProblemCode.TRUNCATED, COUNT - 1, COUNT - 1)
    short = verify(stream.root, raw[:4], writer.key(), count=COUNT)
    _stopped(short, ProblemCode.TRUNCATED, 4, 4)
    _stopped(verify(stream.root.raw[:50], raw), ProblemCode.TRUNCATED, None, 0)


async def test_epochs_and_payloads_the_author_got_wrong_are_named() -> None:
    writer, stream = await _written()
    last = stream.messages[-1]
    key = writer.key()
    at = last.timestamp_ms
    epoch_one = forge(AUTHOR, stream.stream_id, COUNT, last.hash, timestamp_ms=at, epoch=1, key=key)
    _stopped(verify(stream.root, [*stream.messages, epoch_one], key), ProblemCode.BAD_EPOCH, 6, 6)
    keys = forge(AUTHOR, stream.stream_id, COUNT, last.hash, timestamp_ms=at, kind=MessageKind.KEYS)
    _stopped(verify(stream.root, [*stream.messages, keys], key), ProblemCode.MALFORMED, 6, 6)
    _public_writer, public = await _written(AccessMode.PUBLIC)
    head = public.messages[-1]
    loose = b'{"t": "prov.note", "text": "spaces"}'  # JSON, but not the canonical form
    for payload in (loose, b"\xff", b'{"t":"prov.keys","ephemeral":"0x00","wraps":[]}'):
        bad = forge(AUTHOR, public.stream_id, COUNT, head.hash, payload=payload)
        _stopped(verify(public.root, [*public.messages, bad]), ProblemCode.BAD_PAYLOAD, 6, 6)


async def test_a_rotation_cuts_a_removed_subscriber_off_while_a_kept_one_reads_on() -> None:
    kept, removed, outsider = (X25519PrivateKey.generate() for _ in range(3))
    store = MemoryStreamStore()
    await store.open()
    writer = await StreamWriter.create(
        store,
        AUTHOR,
        purpose="session",
        access=AccessMode.SUBSCRIBERS,
        subscribers=[kept.public_key(), removed.public_key()],
        now_ms=Clock(),
    )
    await writer.append_many(records(3))
    rotation = await writer.rotate([kept.public_key()])
    assert [m.epoch for m in rotation] == [1]
    await writer.append_many(records(3))
    stream = await ProvenanceStream.load(store, writer.stream_id)
    assert len(stream.messages) == 8  # keys, 3 records, keys, 3 records

    read_on = stream.verify(kept)
    assert read_on.ok, read_on.problem
    assert read_on.records == records(3) + records(3)
    assert isinstance(read_on.messages[4].content, KeyGrant)

    cut_off = stream.verify(removed)
    _stopped(cut_off, ProblemCode.MISSING_KEY, 5, 5)  # the rotation itself verifies
    assert cut_off.records == records(3)
    _stopped(stream.verify(outsider), ProblemCode.MISSING_KEY, 1, 1)
    assert stream.verify(removed, payloads=False).ok
    # The new key opens the new epoch only; the author holds every epoch's key.
    assert writer.key() != writer.key(0)
    assert stream.verify({0: writer.key(0), 1: writer.key(1)}).ok
    _stopped(stream.verify({1: writer.key(1)}), ProblemCode.MISSING_KEY, 1, 1)


async def test_a_subscriber_added_later_reads_the_current_epoch() -> None:
    late = X25519PrivateKey.generate()
    store = MemoryStreamStore()
    await store.open()
    writer = await StreamWriter.create(
        store, AUTHOR, purpose="feed", access=AccessMode.SUBSCRIBERS, now_ms=Clock()
    )
    await writer.append_many(records(2))
    await writer.share([late.public_key()])
    await writer.append_many(records(2))
    stream = await ProvenanceStream.load(store, writer.stream_id)
    # The grant comes after the first records: the reader learns the key late, and
    # what came before it stays unread, named rather than skipped.
    _stopped(stream.verify(late), ProblemCode.MISSING_KEY, 1, 1)
    ahead = {0: writer.key(0)}
    assert stream.verify(ahead).ok


async def test_a_receipt_names_who_signed_it() -> None:
    buyer = OTHER
    hub = TOKEN
    forward, backward = Totals(40, 4 * 10**16, 4 * 10**16), Totals(0, 0, 0)
    digest = session_receipt_digest(
        channel_domain(31337, hub),
        bytes([1]) * 32,
        bytes([2]) * 32,
        (forward.units, forward.value, forward.paid),
        (backward.units, backward.value, backward.paid),
        1000,
        2000,
    )
    receipt = ReceiptRecord(
        bytes([1]) * 32,
        bytes([2]) * 32,
        31337,
        hub,
        forward,
        backward,
        1000,
        2000,
        (AUTHOR.sign_digest(digest), buyer.sign_digest(digest)),
    )
    store = MemoryStreamStore()
    await store.open()
    writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=Clock())
    await writer.append(receipt)
    await writer.append(MeterRecord(MeterUnit.WH, 1, 41, 1000))
    verified = (await ProvenanceStream.load(store, writer.stream_id)).verify(writer.key())
    assert verified.ok
    read = verified.records[0]
    assert isinstance(read, ReceiptRecord)
    assert read == receipt
    assert read.signers() == (AUTHOR.address, buyer.address)
    changed = dataclasses.replace(read, stopped_ms=2001)
    assert changed.signers() != (AUTHOR.address, buyer.address)


async def test_decoded_and_raw_messages_verify_alike() -> None:
    writer, stream = await _written()
    raw = [m.raw for m in stream.messages]
    assert [decode_message(r) for r in raw] == list(stream.messages)
    assert verify(stream.root.raw, raw, writer.key()) == stream.verify(writer.key())
    # Fields set apart from the bytes count for nothing: the bytes are what verifies.
    moved = dataclasses.replace(stream.messages[1], index=7)
    assert verify(stream.root, [stream.messages[0], moved], writer.key()).ok
    renamed = dataclasses.replace(stream.root, author=OTHER.address)
    assert verify(renamed, stream.messages, writer.key()).ok
