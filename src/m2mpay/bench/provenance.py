"""`m2mpay bench provenance`: provenance streams written and verified.

`streams` restricted streams are written at once, each by its own `StreamWriter`, one
meter reading per append, into one SQLite stream store: each message is signed, sealed
(AES-256-GCM) and durable (fsynced) before its append returns, the appends of all
streams sharing group commits, as a node serving many sessions writes them. Then every
stream is read back and verified in Python, payloads decrypted and decoded. Overhead is
what a message weighs beyond its record's canonical JSON: framing, chain, signature,
nonce and tag.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from m2mpay.bench.rig import Progress, narrator
from m2mpay.crypto import PrivateKey
from m2mpay.provenance import (
    AccessMode,
    MeterRecord,
    MeterUnit,
    ProvenanceStream,
    SqliteStreamStore,
    StreamWriter,
)
from m2mpay.provenance.stream_records import encode_payload

__all__ = ["measure_provenance"]

_AUTHOR: Final = PrivateKey(bytes(31) + b"\x42")
_NOTES: Final = (
    "anchor_gas_per_message (stream heads anchored on chain in batches of 256) and"
    " browser_verify_10k_ms (the web reader verifying 10,000 messages in Chromium) come"
    " with the later parts of issue 15 that build them; they are not measured here."
)


def _reading(n: int) -> MeterRecord:
    return MeterRecord(MeterUnit.WH, 250 + n % 17, 250 * (n + 1), 1000)


async def measure_provenance(
    *, streams: int = 64, messages: int = 20_000, progress: Progress | None = None
) -> dict[str, Any]:
    say = narrator(progress)
    per_stream = max(1, messages // streams)
    total = per_stream * streams
    with tempfile.TemporaryDirectory(prefix="m2mpay-bench-provenance-") as root:
        async with SqliteStreamStore(Path(root) / "streams.sqlite3") as store:
            say(f"creating {streams} restricted streams")
            writers = [
                await StreamWriter.create(
                    store, _AUTHOR, purpose="session", access=AccessMode.RESTRICTED
                )
                for _ in range(streams)
            ]
            commits_before = store.commit_count

            async def write(writer: StreamWriter) -> None:
                for n in range(per_stream):
                    await writer.append(_reading(n))

            say(f"writing {total:,} messages, {per_stream:,} a stream, all streams at once")
            started = time.perf_counter()
            await asyncio.gather(*(write(w) for w in writers))
            write_s = time.perf_counter() - started
            commits = store.commit_count - commits_before

            loaded = [await ProvenanceStream.load(store, w.stream_id) for w in writers]
        say("verifying and decrypting every stream")
        keys = [w.key() for w in writers]
        started = time.perf_counter()
        verified = [s.verify(k) for s, k in zip(loaded, keys, strict=True)]
        verify_s = time.perf_counter() - started
    if not all(v.ok and len(v.messages) == per_stream for v in verified):
        raise AssertionError("a stream written by the bench did not verify")
    overheads = [
        len(m.message.raw) - len(encode_payload(record))
        for v in verified
        for m, record in zip(v.messages, v.records, strict=True)
    ]
    sizes = [len(m.message.raw) for v in verified for m in v.messages]
    return {
        "streams": streams,
        "messages": total,
        "access": "restricted",
        "store": "sqlite",
        "writes_per_s": round(total / write_s),
        "write_commits": commits,
        "messages_per_commit": round(total / max(1, commits), 1),
        "verify_per_s": round(total / verify_s),
        "overhead_bytes_per_record": round(statistics.fmean(overheads), 1),
        "message_bytes": round(statistics.fmean(sizes), 1),
        "notes": _NOTES,
    }
