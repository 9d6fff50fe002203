"""What the web reader's browser tests share: a stream the Python writer wrote (its first
five messages anchored on an embedded chain, with another stream's head in the same batch),
served with the reader by `reader_mount` and beside it the tampered files of each kind,
the chain served over JSON-RPC (`Served.rpc`, for the reader to check anchors against),
pages that reach nothing but that server (and the servers they are told of), and what a
verified or a refused page shows."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from playwright.async_api import Browser, Page, Route
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from m2mpay.asgi import AsgiServer
from m2mpay.chain import EmbeddedLedger, deploy_anchor
from m2mpay.chain.rpc_server import EmbeddedLedgerServer
from m2mpay.crypto import merkle_proof, merkle_root
from m2mpay.provenance import (
    AccessMode,
    MemoryStreamStore,
    MeterRecord,
    MeterUnit,
    NoteRecord,
    PaymentRecord,
    PriceRecord,
    ProvenanceStream,
    SessionRecord,
    StreamRecord,
    StreamWriter,
)
from m2mpay.provenance.anchor_proof import AnchorProof
from m2mpay.provenance.anchoring import AnchorConfig
from m2mpay.provenance.qr import StreamCode
from m2mpay.provenance.reader_app import READER_ASSETS, reader_mount, stream_file_path
from m2mpay.provenance.records import stream_leaf
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_file import stream_file_lines
from tests.provenance.streams_kit import AUTHOR, OTHER, TOKEN, Clock, forge

__all__ = [
    "ANCHORED",
    "ANCHOR_FORGERIES",
    "CHROMIUM",
    "Served",
    "never_verified",
    "offline_page",
    "serve_reader",
    "settled",
    "shows_anchors",
    "shows_the_verified_stream",
]

CHROMIUM: Final = "/usr/bin/chromium"  # the Makefile's system-deps installs it; never a download
CHANNEL: Final = bytes([9]) * 32
SETTLED: Final = '#status[data-state="verified"], #status[data-state="failed"]'
ANCHORED: Final = 5  # the session stream's first messages anchored; the rest are not yet
ANCHOR_FORGERIES: Final = ("sibling", "root", "other-stream", "other-head", "beyond")


def session_records() -> list[StreamRecord]:
    made: list[StreamRecord] = [
        SessionRecord(
            bytes([1]) * 32, CHANNEL, 31337, TOKEN, AUTHOR.address, OTHER.address, MeterUnit.WH
        ),
        PriceRecord(MeterUnit.WH, 10**15, TOKEN),
    ]
    for i in range(3):
        made.append(MeterRecord(MeterUnit.WH, 250 + i, 250 * (i + 1) + i, 60_000))
        made.append(
            PaymentRecord(CHANNEL, OTHER.address, 10**17 * (i + 1), 10**17 * (i + 1) * (i + 2) // 2)
        )
    made.append(NoteRecord("the turbine's output, hour by hour"))
    return made


@dataclass
class Served:
    url: str
    stream: ProvenanceStream
    upstream: ProvenanceStream
    key: bytes
    files: dict[str, bytes]
    anchored: AnchorProof  # the proof of the session stream's head at ANCHORED - 1
    own_tree: AnchorProof  # a forgery that holds offline: see _own_tree
    rpc: str  # the chain's JSON-RPC URL
    ledger: EmbeddedLedger

    @property
    def reader(self) -> str:
        return f"{self.url}/provenance/reader/"

    def code(self, src: str | None = None, *, key: bytes | None = None) -> StreamCode:
        src = src or f"{self.url}/provenance{stream_file_path(self.stream.stream_id)}"
        return StreamCode(self.stream.stream_id, src, key)

    def tampered(self, name: str, key: bytes | None, *, rpc: str | None = None) -> str:
        """The reader's URL for the tampered file `name` (its anchors checked at `rpc`)."""
        code = self.code(f"{self.url}/tampered/{name}.jsonl", key=key)
        return dataclasses.replace(code, rpc=rpc).url(self.reader)


def _file(stream: ProvenanceStream, messages: list[bytes], count: int | None = None) -> bytes:
    lines = list(stream_file_lines(stream.root, list(stream.messages)))
    header = lines[0]
    if count is not None:
        header = header.replace(
            f'"count":{len(stream.messages)}'.encode(), f'"count":{count}'.encode()
        )
    return header + b"".join(b'{"message":"0x' + m.hex().encode() + b'"}\n' for m in messages)


def _own_tree(proof: AnchorProof) -> AnchorProof:
    """The forgery only the chain refutes: the real head in the forger's own Merkle tree
    (beside a leaf of its choosing), claiming the genuine proof's block and transaction."""
    head = stream_leaf(*_head_of(proof))
    leaves = [head, bytes([0xEE]) * 32]
    return dataclasses.replace(
        proof,
        position=0,
        count=2,
        siblings=tuple(merkle_proof(leaves, 0)),
        root=merkle_root(leaves),
    )


def _head_of(proof: AnchorProof) -> tuple[bytes, int, bytes]:
    message, forged = proof.check_offline()
    assert message is not None
    assert forged is None
    assert not proof.chain
    return message.stream_id, message.index, message.hash


def _anchor_forgeries(
    stream: ProvenanceStream, key: bytes, proof: AnchorProof, upstream: AnchorProof
) -> dict[str, bytes]:
    """The stream whole, with its anchor proof forged in each way (`ANCHOR_FORGERIES`)."""
    messages = list(stream.messages)
    head = ANCHORED - 1
    other_head = forge(
        AUTHOR,
        stream.stream_id,
        head,
        messages[head - 1].hash,
        key=key,
        timestamp_ms=messages[head - 1].timestamp_ms,
    )

    def with_proof(forged: AnchorProof, held: int = len(messages)) -> bytes:
        return b"".join(stream_file_lines(stream.root, messages[:held], [forged]))

    first = proof.siblings[0]
    return {
        "anchor-sibling": with_proof(
            dataclasses.replace(proof, siblings=(bytes([first[0] ^ 1]) + first[1:],))
        ),
        "anchor-root": with_proof(dataclasses.replace(proof, root=bytes(32))),
        "anchor-other-stream": with_proof(upstream),  # a true proof, of another stream
        "anchor-other-head": with_proof(dataclasses.replace(proof, message=other_head.raw)),
        "anchor-beyond": with_proof(proof, held=head),  # the file ends before the head
        "anchored": with_proof(proof),
        "anchor-own-tree": with_proof(_own_tree(proof)),
        "anchor-other-chain": with_proof(dataclasses.replace(proof, chain_id=proof.chain_id + 1)),
        "anchor-other-contract": with_proof(dataclasses.replace(proof, anchor=OTHER.address)),
    }


def _tamperings(stream: ProvenanceStream, key: bytes) -> dict[str, bytes]:
    raw = [m.raw for m in stream.messages]
    flipped = bytearray(raw[3])
    flipped[150] ^= 0x01
    last = stream.messages[-1]
    fork = forge(
        AUTHOR,
        stream.stream_id,
        2,
        stream.messages[1].hash,
        key=key,
        timestamp_ms=stream.messages[1].timestamp_ms,
    ).raw
    by_other = forge(
        OTHER, stream.stream_id, len(raw), last.hash, key=key, timestamp_ms=last.timestamp_ms
    ).raw
    whole = _file(stream, raw)
    return {
        "flipped": _file(stream, [*raw[:3], bytes(flipped), *raw[4:]]),
        "reordered": _file(stream, [*raw[:2], raw[3], raw[2], *raw[4:]]),
        "dropped": _file(stream, [*raw[:2], *raw[3:]], count=len(raw) - 1),
        "replayed": _file(stream, [*raw, raw[1]], count=len(raw) + 1),
        "inserted": _file(stream, [*raw[:2], fork, *raw[2:]], count=len(raw) + 1),
        "other-signer": _file(stream, [*raw, by_other], count=len(raw) + 1),
        "truncated": _file(stream, raw[:4]),
        "cut-short": whole[:-40],
        "whole": whole,
    }


@asynccontextmanager
async def serve_reader() -> AsyncIterator[Served]:
    """The reader and the stream files of one store on a server of the test's own: the
    session stream (restricted) with its first `ANCHORED` messages anchored, its upstream
    (public, anchored in the same batch), and under /tampered/ the files of each kind."""
    assert (READER_ASSETS / "reader.js").is_file(), "run make test: it builds the reader's assets"
    async with EmbeddedLedger() as ledger, MemoryStreamStore() as store:
        deployer, submitter = ledger.dev_accounts()[:2]
        contract, _ = await deploy_anchor(ledger, deployer)
        config = AnchorConfig(batch_records=10**6, batch_interval_s=3600.0)
        anchorer = StreamAnchorer(store, anchor=contract, signer=submitter, config=config)
        upstream_writer = await StreamWriter.create(
            store, OTHER, purpose="turbine", access=AccessMode.PUBLIC, now_ms=Clock()
        )
        await upstream_writer.append_many([MeterRecord(MeterUnit.WH, 900, 900, 60_000)])
        writer = await StreamWriter.create(
            store,
            AUTHOR,
            purpose="charger session",
            links=[upstream_writer.stream_id],
            now_ms=Clock(),
        )
        made = session_records()
        await writer.append_many(made[:ANCHORED])
        (batch,) = await anchorer.flush()
        assert batch.count == 2
        await writer.append_many(made[ANCHORED:])
        stream = await ProvenanceStream.load(store, writer.stream_id)
        upstream = await ProvenanceStream.load(store, upstream_writer.stream_id)
        (proof,) = await anchorer.head_proofs(writer.stream_id)
        (upstream_proof,) = await anchorer.head_proofs(upstream.stream_id)
        files = _tamperings(stream, writer.key()) | _anchor_forgeries(
            stream, writer.key(), proof, upstream_proof
        )

        async def tampered(request: Request) -> Response:
            name = request.path_params["name"].removesuffix(".jsonl")
            return Response(files[name], media_type="application/x-ndjson")

        app = Starlette(
            routes=[
                reader_mount(store, anchorer=anchorer),
                HttpRoute("/tampered/{name}", tampered),
            ]
        )
        server = AsgiServer(app, port=0, name="reader test server")
        url = await server.start()
        rpc = EmbeddedLedgerServer(ledger)
        try:
            rpc_url = await rpc.start()
            yield Served(
                url, stream, upstream, writer.key(), files, proof, _own_tree(proof), rpc_url, ledger
            )
        finally:
            await rpc.stop()
            await server.stop()


async def offline_page(
    browser: Browser,
    base: str,
    elsewhere: list[str],
    *,
    requested: list[str] | None = None,
    headers: dict[str, str] | None = None,
    also: Sequence[str] = (),
) -> Page:
    """A page whose every request not to the server at `base` (or one of `also`) is
    aborted and listed, as is every script error and console error (a blocked resource, a
    policy refused); the requests to the server listed in `requested`; `headers` sent with
    every request."""
    context = await browser.new_context(
        viewport={"width": 1100, "height": 1400}, extra_http_headers=headers
    )

    async def only_the_server(route: Route) -> None:
        if any(route.request.url.startswith(f"{b}/") for b in (base, *also)):
            if requested is not None:
                requested.append(route.request.url)
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_server)
    page = await context.new_page()
    page.on("pageerror", lambda error: elsewhere.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            elsewhere.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    return page


async def settled(page: Page) -> str:
    status = page.locator("#status")
    await page.wait_for_selector(SETTLED, timeout=30_000)
    state = await status.get_attribute("data-state")
    assert state is not None
    return state


async def shows_the_verified_stream(page: Page, served: Served) -> None:
    assert await settled(page) == "verified", await page.locator("#status").inner_text()
    assert await page.locator("#status .tick").count() == 1
    assert await page.locator("#paid-address").inner_text() == str(AUTHOR.address)
    assert await page.locator("#message-count").inner_text() == str(len(served.stream.messages))
    rows = page.locator("#records tr")
    assert await rows.count() == len(served.stream.messages)
    kinds = [await rows.nth(i).get_attribute("data-kind") for i in range(await rows.count())]
    assert kinds == ["session", "price", *["meter reading", "payment"] * 3, "note"]
    assert "250 Wh over 60 s" in await rows.nth(2).inner_text()
    assert str(OTHER.address) in await rows.nth(3).inner_text()
    assert await page.locator("#totals").inner_text() == (
        "Metered: 753 Wh; paid: 600000000000000000 (in the token's smallest units)."
    )
    # Amounts say their unit on every line; messages are counted from 1, indexed from 0.
    smallest = "(the token's smallest units)"
    assert f"1000000000000000 {smallest} of token {TOKEN}" in await rows.nth(1).inner_text()
    assert f"100000000000000000 {smallest} received from" in await rows.nth(3).inner_text()
    assert await rows.nth(0).locator("td").first.inner_text() == "1 (index 0)"
    assert await rows.nth(8).locator("td").first.inner_text() == "9 (index 8)"
    await shows_anchors(page, served, ANCHORED)
    # The key stayed in the fragment: the requests the page made never carried it.
    assert served.key.hex() not in page.url.split("#")[0]


async def shows_anchors(page: Page, served: Served, anchored: int) -> None:
    """The first `anchored` messages shown anchored in the proof's block and transaction,
    the rest not anchored yet, and never more claimed than was checked."""
    proof = served.anchored
    assert proof.tx_hash is not None
    tx = proof.tx_hash.hex()
    block = f"anchored in block {proof.block_number} (tx 0x{tx})"
    cells = page.locator("#records td[data-anchor]")
    count = len(served.stream.messages)
    texts = [await cells.nth(i).inner_text() for i in range(await cells.count())]
    short = f"anchored in block {proof.block_number} (tx 0x{tx[:8]}…{tx[-8:]})"
    assert texts == [short] * anchored + ["not anchored yet"] * (count - anchored)
    if anchored:
        assert await cells.first.get_attribute("title") == block
    status = await page.locator("#anchor-status").inner_text()
    summary = await page.locator("#anchors").inner_text()
    if anchored:
        assert "not checked against the chain" in status
        assert "not checked against the chain" in summary
        assert f"Anchored: {anchored} of {count} messages, the last in block" in status
        assert summary.startswith(f"messages 1–{anchored} (index 0–{anchored - 1}) {block}; ")
        rest = f"messages {anchored + 1}–{count} (index {anchored}–{count - 1})"
        assert f"{rest} not anchored yet" in summary
    else:
        assert "anchored in" not in status + summary
        assert status.startswith("Not anchored yet")
        assert summary.startswith(f"messages 1–{count} (index 0–{count - 1}) not anchored yet")


async def never_verified(page: Page, code: str, position: int | None) -> None:
    assert await settled(page) == "failed"
    assert await page.locator("#problem-code").inner_text() == code
    if position is None:
        assert await page.locator("#problem-position").count() == 0
    else:
        # People count from 1, the stream indexes from 0: both said.
        place = page.locator("#problem-position")
        assert await place.inner_text() == f"message {position + 1} (index {position})"
        assert await place.get_attribute("data-position") == str(position)
    assert await page.locator(".tick").count() == 0
    # Nothing is shown anchored unless all of it verified.
    assert await page.locator('#records td[data-anchor="anchored"]').count() == 0
    assert await page.locator("#anchor-status").count() == 0
    assert not await page.locator("#totals").is_visible()  # no sums over part of a stream
    caption = page.locator("#records-caption")
    if await caption.is_visible():
        assert "does NOT verify" in await caption.inner_text()
