"""The web reader's verify (web/reader/verify.js, run in Node as the page bundles it)
agrees with Python's `verify` on every case: the same problem code at the same message,
the same number of messages verified, the same records. Python writes the streams and
the cheats; the browser tests (tests/provenance/test_reader_browser.py) show the page."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from m2mpay.crypto import Signature
from m2mpay.provenance import (
    AccessMode,
    MemoryStreamStore,
    NoteRecord,
    ProvenanceStream,
    ReadKey,
    ReceiptRecord,
    SessionRecord,
    StreamInvalid,
    StreamWriter,
    Totals,
    Verified,
    read_stream_file,
    verify,
)
from m2mpay.provenance.stream_file import stream_file_lines
from m2mpay.provenance.stream_format import MessageKind
from m2mpay.provenance.stream_records import MeterUnit, encode_payload
from tests.provenance.streams_kit import AUTHOR, OTHER, TOKEN, Clock, forge, in_node, records

DRIVER = Path(__file__).with_name("reader_verify.mjs")
COUNT = 6


def _in_js(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = in_node([str(DRIVER)], cases, timeout=240)
    return answers


def _python_reads_file(data: bytes, key: bytes) -> dict[str, Any]:
    """What Python says of a file: as the driver answers, `file` set when the file
    itself is refused before any verifying."""
    try:
        stream_file = read_stream_file(io.BytesIO(data))
    except StreamInvalid as exc:
        return {
            "ok": False,
            "code": exc.code,
            "position": None,
            "verified": 0,
            "records": [],
            "file": True,
        }
    return _as_python_says(stream_file.verify(key))


def _as_python_says(verified: Verified) -> dict[str, Any]:
    problem = verified.problem
    return {
        "ok": verified.ok,
        "code": None if problem is None else problem.code.value,
        "position": None if problem is None else problem.position,
        "verified": len(verified.messages),
        "records": [
            None if m.content is None else encode_payload(m.content).decode()
            for m in verified.messages
        ],
    }


class Cases:
    """Each case verified by Python now and by the reader's verify in one Node run."""

    def __init__(self) -> None:
        self.cases: list[dict[str, Any]] = []
        self.expected: list[dict[str, Any]] = []
        self.names: list[str] = []

    def add(
        self,
        name: str,
        root: bytes,
        messages: list[bytes],
        key: ReadKey | None = None,
        *,
        stream_id: bytes | None = None,
        count: int | None = None,
    ) -> Verified:
        case: dict[str, Any] = {
            "root": root.hex(),
            "messages": [m.hex() for m in messages],
            "stream": None if stream_id is None else stream_id.hex(),
            "count": count,
        }
        if isinstance(key, bytes):
            case["key"] = key.hex()
        elif isinstance(key, X25519PrivateKey):
            case["subscriber"] = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).hex()
        elif key is not None:
            case["keys"] = {str(epoch): k.hex() for epoch, k in key.items()}
        verified = verify(root, messages, key, stream_id=stream_id, count=count)
        self.cases.append(case)
        self.expected.append(_as_python_says(verified))
        self.names.append(name)
        return verified

    def check(self) -> None:
        answers = _in_js(self.cases)
        assert len(answers) == len(self.expected)
        for name, expected, answer in zip(self.names, self.expected, answers, strict=True):
            assert answer == expected, name


async def _written(
    access: AccessMode = AccessMode.RESTRICTED, written: list[Any] | None = None
) -> tuple[StreamWriter, ProvenanceStream]:
    store = MemoryStreamStore()
    await store.open()
    writer = await StreamWriter.create(
        store, AUTHOR, purpose="session", access=access, now_ms=Clock()
    )
    await writer.append_many(records(COUNT) if written is None else written)
    return writer, await ProvenanceStream.load(store, writer.stream_id)


def _every_kind_of_record() -> list[Any]:
    signature = AUTHOR.sign_digest(bytes([5]) * 32)
    return [
        SessionRecord(
            bytes([1]) * 32,
            bytes([2]) * 32,
            31337,
            TOKEN,
            AUTHOR.address,
            OTHER.address,
            MeterUnit.WH,
        ),
        *records(4),
        NoteRecord('ctl \x01\x1f\x7f \u2028 é 😀 \\ " \t\n' + "x" * 900),
        ReceiptRecord(
            bytes([1]) * 32,
            bytes([2]) * 32,
            31337,
            TOKEN,
            Totals(10, 2 * 10**40, 3),
            Totals(0, 0, 0),
            1,
            2,
            (Signature(signature),),
        ),
    ]


async def test_good_streams_of_every_mode_and_record_read_alike() -> None:
    cases = Cases()
    for access in AccessMode:
        writer, stream = await _written(access, _every_kind_of_record())
        raw = [m.raw for m in stream.messages]
        key = None if access is AccessMode.PUBLIC else writer.key()
        keys = {0: key} if access is AccessMode.SUBSCRIBERS and key else key
        good = cases.add(f"{access.name} good", stream.root.raw, raw, keys, count=len(raw))
        assert good.ok, good.problem
        cases.add(f"{access.name} asked by id", stream.root.raw, raw, keys, stream_id=bytes(32))
    cases.check()


async def test_every_flipped_byte_of_a_message_and_of_the_root_is_named_alike() -> None:
    writer, stream = await _written()
    raw = [m.raw for m in stream.messages]
    cases = Cases()
    for offset in range(len(raw[3])):
        flipped = bytearray(raw[3])
        flipped[offset] ^= 0xFF
        cases.add(
            f"message byte {offset}",
            stream.root.raw,
            [*raw[:3], bytes(flipped), *raw[4:]],
            writer.key(),
        )
    for offset in range(len(stream.root.raw)):
        flipped = bytearray(stream.root.raw)
        flipped[offset] ^= 0xFF
        cases.add(f"root byte {offset}", bytes(flipped), raw, writer.key())
    cases.check()


async def test_reordered_dropped_replayed_inserted_and_foreign_messages_are_named_alike() -> None:
    writer, stream = await _written()
    key = writer.key()
    raw = [m.raw for m in stream.messages]
    root = stream.root.raw
    _public_writer, public = await _written(AccessMode.PUBLIC)
    praw = [m.raw for m in public.messages]
    last = public.messages[-1]
    _other_writer, other = await _written()
    fork = forge(AUTHOR, public.stream_id, 2, public.messages[1].hash).raw
    cases = Cases()
    cases.add("reordered", root, [*raw[:2], raw[3], raw[2], *raw[4:]], key)
    cases.add("dropped", root, [*raw[:2], *raw[3:]], key)
    cases.add("replayed at the end", root, [*raw, raw[1]], key)
    cases.add("replayed in place", root, [*raw[:3], raw[2], *raw[3:]], key)
    cases.add("inserted fork", public.root.raw, [*praw[:2], fork, *praw[2:]])
    cases.add("substituted fork", public.root.raw, [*praw[:2], fork, *praw[3:]])
    cases.add("other stream", root, [raw[0], other.messages[1].raw], key)
    cases.add("gap, not reordered", root, [raw[0], raw[2], other.messages[1].raw], key)
    cases.add(
        "root of another stream",
        other.root.raw,
        [m.raw for m in other.messages],
        stream_id=stream.stream_id,
    )
    by_other = forge(OTHER, public.stream_id, COUNT, last.hash).raw
    cases.add("other signer", public.root.raw, [*praw, by_other])
    posing = forge(OTHER, public.stream_id, COUNT, last.hash, signer_field=AUTHOR.address).raw
    cases.add("other signer posing", public.root.raw, [*praw, posing])
    unlinked = forge(AUTHOR, public.stream_id, COUNT, bytes(32), timestamp_ms=last.timestamp_ms)
    cases.add("broken chain", public.root.raw, [*praw, unlinked.raw])
    earlier = forge(AUTHOR, public.stream_id, COUNT, last.hash, timestamp_ms=1)
    cases.add("time backwards", public.root.raw, [*praw, earlier.raw])
    cases.check()


async def test_keys_truncation_epochs_and_bad_payloads_are_named_alike() -> None:
    writer, stream = await _written()
    key = writer.key()
    raw = [m.raw for m in stream.messages]
    root = stream.root.raw
    last = stream.messages[-1]
    at = last.timestamp_ms
    cases = Cases()
    cases.add("missing key", root, raw)
    cases.add("wrong key", root, raw, bytes(32))
    cases.add("key cut short", root, raw, key[:16])
    cases.add("message cut short", root, [*raw[:-1], raw[-1][:100]], key)
    cases.add("stream cut short", root, raw[:4], key, count=COUNT)
    cases.add("root cut short", root[:50], raw, key)
    epoch_one = forge(AUTHOR, stream.stream_id, COUNT, last.hash, timestamp_ms=at, epoch=1, key=key)
    cases.add("epoch in a restricted stream", root, [*raw, epoch_one.raw], key)
    keys = forge(AUTHOR, stream.stream_id, COUNT, last.hash, timestamp_ms=at, kind=MessageKind.KEYS)
    cases.add("keys in a restricted stream", root, [*raw, keys.raw], key)
    _public_writer, public = await _written(AccessMode.PUBLIC)
    praw = [m.raw for m in public.messages]
    head = public.messages[-1]
    payloads = [
        b'{"t": "prov.note", "text": "spaces"}',
        b"\xff",
        b'{"t":"prov.keys","ephemeral":"0x00","wraps":[]}',
        b'{"t":"prov.note","text":"a","x":1}',
        b'{"t":"prov.nothing"}',
        b'{"t":"prov.note"}',
        b'{"delta":1.0,"interval_ms":1,"t":"prov.meter","total":1,"unit":"Wh"}',
        b'{"delta":1,"interval_ms":1,"t":"prov.meter","total":9007199254740992,"unit":"Wh"}',
        b'{"delta":1,"interval_ms":1,"t":"prov.meter","total":1,"unit":"kWh"}',
        b'{"price":"01","t":"prov.price","token":"0x0303030303030303030303030303030303030303","unit":"Wh"}',
        b'{"price":"1","t":"prov.price","token":"0xf1f6619b38a98d6de0800f1defc0a6399eb6d30c","unit":"Wh"}',
        b'{"price":"1","t":"prov.price","token":"0xF1F6619B38A98d6De0800F1DefC0a6399eB6d30C","unit":"Wh"}',
        b'{"text":"x","t":"prov.note"}',
        b'{"t":"prov.note","text":"\\ud800"}',
        b'{"t":"prov.note","text":"\\u00e9"}',
        b"[]",
        b"",
    ]
    for number, payload in enumerate(payloads):
        bad = forge(AUTHOR, public.stream_id, COUNT, head.hash, payload=payload)
        cases.add(f"payload {number}", public.root.raw, [*praw, bad.raw])
    cases.check()


async def test_a_subscriber_unwraps_its_keys_alike_until_cut_off() -> None:
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
    await writer.rotate([kept.public_key()])
    await writer.append_many(records(3))
    stream = await ProvenanceStream.load(store, writer.stream_id)
    raw = [m.raw for m in stream.messages]
    cases = Cases()
    assert cases.add("kept", stream.root.raw, raw, kept).ok
    cases.add("removed", stream.root.raw, raw, removed)
    cases.add("outsider", stream.root.raw, raw, outsider)
    cases.add("keys of epoch 1 only", stream.root.raw, raw, {1: writer.key(1)})
    cases.check()


async def test_stream_files_are_read_alike() -> None:
    writer, stream = await _written()
    lines = list(stream_file_lines(stream.root, list(stream.messages)))
    whole = b"".join(lines)
    files = {
        "whole": whole,
        "last line cut": whole[:-10],
        "a line dropped": b"".join([*lines[:3], *lines[4:]]),
        "messages missing": b"".join(lines[:4]),
        "not a stream file": b'{"format":"other"}\n',
        "version 2 without anchors": lines[0].replace(b'"version":1', b'"version":2')
        + b"".join(lines[1:]),
        "version 3": lines[0].replace(b'"version":1', b'"version":3') + b"".join(lines[1:]),
        "an anchor promised, none given": lines[0].replace(
            b'"version":1', b'"anchors":1,"version":2'
        )
        + b"".join(lines[1:]),
        "not JSON": b"m2mpay\n",
        "a line of another shape": lines[0] + b'{"message":"0x00","x":1}\n',
        "empty": b"",
    }
    cases: list[dict[str, Any]] = [
        {"file": data.hex(), "key": writer.key().hex()} for data in files.values()
    ]
    answers = _in_js(cases)
    assert answers[0]["ok"]
    for (name, data), answer in zip(files.items(), answers, strict=True):
        assert answer == _python_reads_file(data, writer.key()), name


async def test_random_damage_is_named_alike_and_never_throws_in_the_reader() -> None:
    writer, stream = await _written()
    raw = [m.raw for m in stream.messages]
    rng = random.Random(15)
    cases = Cases()
    for number in range(150):
        damaged = [bytearray(m) for m in raw]
        for _ in range(rng.randint(1, 4)):
            target = damaged[rng.randrange(len(damaged))]
            target[rng.randrange(len(target))] = rng.randrange(256)
        items = [bytes(m) for m in damaged]
        if number % 5 == 0:
            items[rng.randrange(len(items))] = rng.randbytes(rng.randrange(300))
        if number % 7 == 0:
            rng.shuffle(items)
        cases.add(f"random damage {number}", stream.root.raw, items, writer.key(), count=len(raw))
    cases.check()
