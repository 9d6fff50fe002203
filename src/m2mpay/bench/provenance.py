"""`m2mpay bench provenance`: provenance streams written and verified.

`streams` restricted streams are written at once, each by its own `StreamWriter`, one
meter reading per append, into one SQLite stream store: each message is signed, sealed
(AES-256-GCM) and durable (fsynced) before its append returns, the appends of all
streams sharing group commits, as a node serving many sessions writes them. Then every
stream is read back and verified in Python, payloads decrypted and decoded. Overhead is
what a message weighs beyond its record's canonical JSON: framing, chain, signature,
nonce and tag.

Anchoring: `anchor_batch` streams get one message each and one `StreamAnchorer` flush
anchors their heads on an embedded chain; `anchor_gas_per_message` is that transaction's
gas (from its receipt) over the messages its batch covers. One message a head is the
costliest case: a stream writing k messages between batches pays 1/k of it a message.

`browser_verify_10k_ms`: the web reader verifying and decrypting a stream of 10,000
messages in Debian's Chromium (`bench/browser_verify.py`); None, with the reason in
`notes`, where Chromium, Playwright or the reader's built assets are absent.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from m2mpay.bench.browser_verify import BROWSER_MESSAGES, CHROMIUM, measure_browser_verify
from m2mpay.bench.rig import Progress, narrator
from m2mpay.chain import EmbeddedLedger, deploy_anchor
from m2mpay.crypto import PrivateKey
from m2mpay.provenance import (
    AccessMode,
    MemoryStreamStore,
    MeterRecord,
    MeterUnit,
    ProvenanceStream,
    SqliteStreamStore,
    StreamWriter,
)
from m2mpay.provenance.anchoring import AnchorConfig
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_records import encode_payload

__all__ = ["measure_provenance"]

_AUTHOR: Final = PrivateKey(bytes(31) + b"\x42")
_NOTES: Final = (
    "anchor_gas_per_message: one anchor transaction's gas over the messages of its batch"
    " of anchor_batch stream heads, one message a head (the costliest case). "
    "browser_verify_ms: the web reader page in headless Chromium verifying and"
    " decrypting a restricted stream of browser_messages messages, from the file's bytes"
    " to its verdict shown (the fetch left out), one cold run; browser_verify_10k_ms is"
    " that time when browser_messages is 10,000 (the default), else null."
)
ANCHOR_BATCH: Final = 256


def _reading(n: int) -> MeterRecord:
    return MeterRecord(MeterUnit.WH, 250 + n % 17, 250 * (n + 1), 1000)


async def measure_anchor_gas(heads: int = ANCHOR_BATCH) -> tuple[int, int]:
    """(the gas of anchoring `heads` streams' heads in one batch, the messages covered),
    from the transaction's receipt on an embedded chain."""
    async with EmbeddedLedger() as ledger, MemoryStreamStore() as store:
        deployer, submitter = ledger.dev_accounts()[:2]
        anchor, _ = await deploy_anchor(ledger, deployer)
        config = AnchorConfig(batch_records=heads + 1, batch_interval_s=3600.0)
        anchorer = StreamAnchorer(store, anchor=anchor, signer=submitter, config=config)
        for n in range(heads):
            writer = await StreamWriter.create(
                store, _AUTHOR, purpose="session", access=AccessMode.PUBLIC
            )
            await writer.append(_reading(n))
        batches = await anchorer.flush()
    if len(batches) != 1 or batches[0].count != heads or batches[0].gas_used is None:
        raise AssertionError("the bench's heads were not anchored in one batch")
    return batches[0].gas_used, heads


async def measure_provenance(
    *,
    streams: int = 64,
    messages: int = 20_000,
    progress: Progress | None = None,
    chromium: Path = CHROMIUM,
    browser_messages: int = BROWSER_MESSAGES,
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
    say(f"anchoring the heads of {ANCHOR_BATCH} streams in one batch on an embedded chain")
    anchor_gas, anchored = await measure_anchor_gas()
    say(f"the web reader verifying {browser_messages:,} messages in Chromium")
    browser_ms, why_not = await measure_browser_verify(browser_messages, chromium=chromium)
    notes = _NOTES if why_not is None else f"{_NOTES} browser_verify_ms is null: {why_not}."
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
        "anchor_batch": anchored,
        "anchor_gas": anchor_gas,
        "anchor_gas_per_message": round(anchor_gas / anchored, 1),
        "browser_messages": browser_messages,
        "browser_verify_ms": browser_ms,
        "browser_verify_10k_ms": browser_ms if browser_messages == BROWSER_MESSAGES else None,
        "notes": notes,
    }
