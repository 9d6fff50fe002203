"""The audit report signed, checked and rendered: the signature holds for the issuer and
fails on any change; the JSON is canonical; the HTML page is self-contained, plain and
carries its signed report; the PDF is a PDF whose text holds the totals; anchors are
checked against a real chain."""

from __future__ import annotations

import base64
import dataclasses
import re
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from m2mpay.chain import NATIVE_TOKEN, EmbeddedLedger, OnchainChannel, deploy_anchor, deploy_hub
from m2mpay.crypto import PrivateKey
from m2mpay.errors import ProvenanceError
from m2mpay.provenance import MemoryStreamStore, StreamStore
from m2mpay.provenance.anchoring import AnchorConfig
from m2mpay.provenance.audit import AuditRange
from m2mpay.provenance.audit_html import Wording, render_html, signed_report_in_html
from m2mpay.provenance.audit_out import save_audit_report
from m2mpay.provenance.audit_pdf import render_pdf
from m2mpay.provenance.audit_report import (
    DiscrepancyCode,
    SignedReport,
    canonical_report,
    read_signed_report,
    sign_report,
)
from m2mpay.provenance.audit_sources import StreamLibrary, audit_chain
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_file import StreamFile
from m2mpay.provenance.stream_records import NoteRecord
from m2mpay.provenance.streams import ProvenanceStream
from tests.provenance.audit_kit import (
    CHARGER,
    MINUTE,
    PRICE_DOWN,
    PRICE_UP,
    START_MS,
    ValueChain,
    charger_sale,
    turbine_sale,
    write_chain,
)

SPAN = AuditRange(from_ms=START_MS, interval_ms=15 * MINUTE)


@pytest.fixture
async def store() -> AsyncIterator[StreamStore]:
    async with MemoryStreamStore() as opened:
        yield opened


async def _signed(store: StreamStore, chain: ValueChain) -> SignedReport:
    return await audit_chain(
        StreamLibrary(store=store),
        chain.downstream.stream_id,
        CHARGER,
        span=SPAN,
        now_ms=lambda: START_MS + 60 * MINUTE,
    )


async def test_the_signature_is_the_issuers_and_any_wallet_checks_it(store: StreamStore) -> None:
    signed = await _signed(store, await write_chain(store))
    signed.check(CHARGER.address)
    # EIP-191 personal_sign of the canonical bytes, as eth-account recovers it.
    message = encode_defunct(primitive=canonical_report(signed.report))
    assert Account.recover_message(message, signature=bytes(signed.signature)) == str(
        CHARGER.address
    )
    other = PrivateKey(bytes(31) + b"\x31")
    with pytest.raises(ProvenanceError, match="bad_report_signature"):
        signed.check(other.address)
    with pytest.raises(ProvenanceError, match="not_issuer"):
        sign_report(signed.report, other)


async def test_a_changed_figure_or_signature_fails_the_check(store: StreamStore) -> None:
    signed = await _signed(store, await write_chain(store))
    document = orjson.loads(signed.to_json())
    document["report"]["hops"][0]["paid"] = str(int(document["report"]["hops"][0]["paid"]) + 1)
    tampered = read_signed_report(orjson.dumps(document))
    with pytest.raises(ProvenanceError, match="bad_report_signature"):
        tampered.check()
    flipped = bytearray(signed.signature)
    flipped[5] ^= 1
    with pytest.raises(ProvenanceError, match="bad_report_signature"):
        dataclasses.replace(signed, signature=type(signed.signature)(bytes(flipped))).check()


async def test_the_signed_json_reads_back_as_it_was_and_bad_files_are_named(
    store: StreamStore,
) -> None:
    signed = await _signed(store, await write_chain(store))
    again = read_signed_report(signed.to_json())
    assert again == signed
    assert again.to_json() == signed.to_json()
    again.check()
    for bad in (b"[]", b"{", b'{"report": {}, "signature": "0x00"}', b"x" * (17 << 20)):
        with pytest.raises(ProvenanceError, match="bad_report"):
            read_signed_report(bad)


async def test_the_page_is_plain_self_contained_and_carries_its_signed_report(
    store: StreamStore,
) -> None:
    chain = await write_chain(store)
    signed = await _signed(store, chain)
    page = render_html(signed, Wording(decimals=18, symbol="M2M"))
    assert "A hop is one sale" in page
    assert "What was measured" in page
    assert f"{CHARGER.address} sold to" in page
    assert "100 Wh" in page
    assert "0.0001 M2M" in page  # 100 Wh at 1e12 a Wh: the turbine's total
    assert "0.00012 M2M" in page  # and the car's
    assert "0.00002 M2M" in page  # the charger's commission
    assert "unanchored" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)  # no CDN, nothing fetched
    assert "<script src" not in page
    carried = signed_report_in_html(page.encode())
    assert carried == signed
    carried.check(CHARGER.address)


async def test_the_pdf_is_a_pdf_whose_text_holds_the_totals(store: StreamStore) -> None:
    signed = await _signed(store, await write_chain(store))
    pdf = render_pdf(signed)
    assert pdf.startswith(b"%PDF-1.")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert re.search(rb"/Type\s*/Page\b", pdf)
    assert render_pdf(signed) == pdf  # invariant: one report, one PDF
    text = _pdf_text(pdf)
    assert "Audit report: energy delivered against payments made" in text
    assert f"{100 * PRICE_UP:,} token units" in text
    assert f"{100 * PRICE_DOWN:,} token units" in text
    assert f"{100 * (PRICE_DOWN - PRICE_UP):,} token units" in text  # the commission
    assert "100 Wh" in text
    assert "unanchored" in text
    assert str(CHARGER.address) in _pdf_metadata(pdf)


async def test_a_channel_the_hub_never_held_is_flagged() -> None:
    async with EmbeddedLedger() as ledger, MemoryStreamStore() as store:
        hub, _ = await deploy_hub(ledger, ledger.dev_accounts()[0])
        sale = dataclasses.replace(turbine_sale(), hub=hub.address, chain_id=ledger.chain_id)
        elsewhere = dataclasses.replace(charger_sale(), chain_id=ledger.chain_id + 1)
        chain = await write_chain(store, upstream=sale, downstream=elsewhere)
        signed = await audit_chain(
            StreamLibrary(store=store), chain.downstream.stream_id, CHARGER, ledger=ledger
        )
    unknown = {
        d.stream: d.detail
        for d in signed.report.discrepancies
        if d.code is DiscrepancyCode.CHANNEL_UNKNOWN
    }
    assert "never held channel" in unknown[chain.upstream.stream_id]
    assert (
        f"on chain {ledger.chain_id + 1}, not on chain {ledger.chain_id}"
        in unknown[chain.downstream.stream_id]
    )


async def test_a_demo_saves_the_page_and_gets_its_path(store: StreamStore, tmp_path: Path) -> None:
    chain = await write_chain(store)
    path = await save_audit_report(
        store, chain.downstream.stream_id, CHARGER, tmp_path / "audit.html"
    )
    assert path == tmp_path / "audit.html"
    carried = signed_report_in_html(path.read_bytes())
    carried.check(CHARGER.address)
    assert [h.units for h in carried.report.hops] == [100, 100]
    assert not (tmp_path / "audit.html.tmp").exists()
    with pytest.raises(ProvenanceError, match="bad_format"):
        await save_audit_report(store, chain.downstream.stream_id, CHARGER, tmp_path / "a.doc")


async def _on_chain(ledger: EmbeddedLedger, store: StreamStore) -> ValueChain:
    """The two sales over channels opened at a real hub (in ETH, by dev accounts: the
    check reads only whether the hub knows a channel)."""
    dev = ledger.dev_accounts()
    hub, _ = await deploy_hub(ledger, dev[0])
    sales = []
    for nonce, sale in enumerate((turbine_sale(), charger_sale()), start=1):
        channel = OnchainChannel(
            dev[2].address, dev[3].address, NATIVE_TOKEN, 3600, nonce, deposit_a=10**15
        )
        await hub.open(dev[2], channel)
        sales.append(
            dataclasses.replace(sale, channel=channel.id, hub=hub.address, chain_id=ledger.chain_id)
        )
    return await write_chain(store, *sales)


async def test_anchors_and_channels_are_checked_against_the_chain() -> None:
    async with EmbeddedLedger() as ledger, MemoryStreamStore() as store:
        anchor, _ = await deploy_anchor(ledger, ledger.dev_accounts()[0])
        anchorer = StreamAnchorer(
            store,
            anchor=anchor,
            signer=ledger.dev_accounts()[1],
            config=AnchorConfig(batch_records=10**6, batch_interval_s=3600.0),
        )
        await anchorer.start()
        try:
            chain = await _on_chain(ledger, store)
            (batch,) = await anchorer.flush()
            library = StreamLibrary(store=store, anchorer=anchorer)
            signed = await audit_chain(
                library, chain.downstream.stream_id, CHARGER, span=SPAN, ledger=ledger
            )
            report = signed.report
            assert report.discrepancies == ()
            assert report.clean
            assert [h.anchor_blocks for h in report.hops] == [(batch.block_number,)] * 2
            assert report.hops[1].anchored_through == 42
            assert report.checks[1].done
            assert "anchors on chain" in report.checks[1].what
            assert report.checks[2].done
            assert "channels on chain" in report.checks[2].what

            # A file of the turbine's stream whose anchor names another block.
            stream = await ProvenanceStream.load(store, chain.upstream.stream_id)
            (proof,) = await anchorer.head_proofs(chain.upstream.stream_id)
            assert proof.block_number is not None
            moved = dataclasses.replace(proof, block_number=proof.block_number + 1)
            forged = StreamFile(
                stream.stream_id,
                len(stream.messages),
                stream.root.raw,
                tuple(m.raw for m in stream.messages),
                (moved,),
            )
            library_with_file = StreamLibrary(store=store, anchorer=anchorer, files=[forged])
            refuted = await audit_chain(
                library_with_file, chain.downstream.stream_id, CHARGER, span=SPAN, ledger=ledger
            )
            codes = [(d.code, d.stream) for d in refuted.report.discrepancies]
            assert codes == [
                (DiscrepancyCode.ANCHOR_INVALID, chain.upstream.stream_id),
                (DiscrepancyCode.UNANCHORED, chain.upstream.stream_id),
            ]
            assert "wrong_block" in refuted.report.discrepancies[0].detail

            await chain.downstream.append(NoteRecord("written after the last anchor"))
            later = dataclasses.replace(SPAN, to_ms=START_MS + 120 * MINUTE)
            late = await audit_chain(
                library, chain.downstream.stream_id, CHARGER, span=later, ledger=ledger
            )
            (unanchored,) = late.report.discrepancies
            assert unanchored.code is DiscrepancyCode.UNANCHORED
            assert "messages 43 to 43" in unanchored.detail
        finally:
            await anchorer.stop()


def _pdf_streams(pdf: bytes) -> list[bytes]:
    found = []
    for match in re.finditer(rb"<<(.*?)>>\s*stream\r?\n(.*?)endstream", pdf, re.DOTALL):
        header, data = match.group(1), match.group(2)
        if b"ASCII85Decode" in header:
            data = base64.a85decode(data.strip(), adobe=True)
        if b"FlateDecode" in header:
            data = zlib.decompress(data)
        found.append(data)
    return found


def _pdf_text(pdf: bytes) -> str:
    """The text shown by the pages' `(…) Tj` operators, joined."""
    shown = []
    for data in _pdf_streams(pdf):
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", data):
            text = re.sub(rb"\\([()\\])", rb"\1", literal)
            shown.append(text.decode("latin-1"))
    return " ".join(shown)


def _pdf_metadata(pdf: bytes) -> str:
    return pdf.decode("latin-1")
