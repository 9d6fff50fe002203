"""What Python writes, WebCrypto reads: Node's WebCrypto (the browser's API) parses the
frame, unwraps a subscriber's keys and opens sealed payloads to the records' canonical
JSON, which is what `JSON.stringify` gives for the parsed record with its keys sorted.
Signatures and hashes (secp256k1, Keccak) wait for the web reader's own library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from m2mpay.provenance import (
    AccessMode,
    MemoryStreamStore,
    NoteRecord,
    ProvenanceStream,
    StreamWriter,
)
from m2mpay.provenance.stream_records import encode_payload
from tests.provenance.streams_kit import AUTHOR, Clock, in_node, records

READER = Path(__file__).with_name("webcrypto_reader.js")


def _read_in_js(stream: ProvenanceStream, **given: Any) -> list[str | None]:
    request = {
        "stream": stream.stream_id.hex(),
        "key": None,
        "subscriber": None,
        "messages": [m.raw.hex() for m in stream.messages],
        **given,
    }
    read: list[str | None] = in_node([str(READER)], request)
    return read


def _sorted_stringify_matches(texts: list[str]) -> bool:
    script = (
        "const s=(v)=>Array.isArray(v)?v.map(s):v&&typeof v==='object'?"
        "Object.fromEntries(Object.keys(v).sort().map((k)=>[k,s(v[k])])):v;"
        "const t=JSON.parse(require('fs').readFileSync(0,'utf8'));"
        "process.stdout.write(String(t.every((x)=>JSON.stringify(s(JSON.parse(x)))===x)));"
    )
    return in_node(["-e", script], texts) is True


async def test_a_restricted_stream_opens_in_webcrypto_to_the_same_records() -> None:
    written = [*records(8), NoteRecord('ctl \x01\x1f\x7f \u2028 é 😀 \\ " \t\n')]
    async with MemoryStreamStore() as store:
        writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=Clock())
        await writer.append_many(written)
        stream = await ProvenanceStream.load(store, writer.stream_id)
        key = writer.key()
    expected = [encode_payload(r).decode() for r in written]
    assert _read_in_js(stream, key=key.hex()) == expected
    assert _sorted_stringify_matches(expected)


async def test_a_subscriber_unwraps_its_keys_in_webcrypto_until_cut_off() -> None:
    kept, removed = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    async with MemoryStreamStore() as store:
        writer = await StreamWriter.create(
            store,
            AUTHOR,
            purpose="session",
            access=AccessMode.SUBSCRIBERS,
            subscribers=[kept.public_key(), removed.public_key()],
            now_ms=Clock(),
        )
        await writer.append_many(records(2))
        await writer.rotate([kept.public_key()])
        await writer.append_many(records(2))
        stream = await ProvenanceStream.load(store, writer.stream_id)
    plain = [encode_payload(r).decode() for r in records(2)]

    def pkcs8(key: X25519PrivateKey) -> str:
        return key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).hex()

    read_kept = _read_in_js(stream, subscriber=pkcs8(kept))
    assert [read_kept[i] for i in (1, 2, 4, 5)] == plain + plain
    read_removed = _read_in_js(stream, subscriber=pkcs8(removed))
    assert [read_removed[i] for i in (1, 2, 4, 5)] == [*plain, None, None]
