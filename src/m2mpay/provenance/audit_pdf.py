"""The audit report as a PDF (ReportLab's page layout), in the words of the HTML page.

ReportLab lays it out in pure Python with its standard fonts: no browser, no font
files. The document is made `invariant` (no creation time or random id in it), so one
signed report gives one PDF, byte for byte; its metadata names the issuer and the
signature, and its last section carries the signature for `m2mpay audit verify` on the
JSON form. Text is in Helvetica, which holds Latin-1: anything beyond (the arrow of a
hop) is written with what it has.
"""

from __future__ import annotations

import io
from typing import Final
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from m2mpay.provenance.audit_html import Wording, utc_time
from m2mpay.provenance.audit_report import AuditReport, Hop, SignedReport

__all__ = ["render_pdf"]

_GRID: Final = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def _latin1(text: str) -> str:
    """What Helvetica can show: our few symbols spelled out, anything else beyond
    Latin-1 (a detail quoting a peer's text) as "?" rather than a missing glyph."""
    text = text.replace("→", "->").replace("✔", "yes").replace("✘", "no").replace("…", "...")
    return text.encode("latin-1", "replace").decode("latin-1")


class _Layout:
    def __init__(self, words: Wording) -> None:
        styles = getSampleStyleSheet()
        self.words = words
        self.title = ParagraphStyle("title", parent=styles["Title"])
        self.heading = ParagraphStyle("heading", parent=styles["Heading2"])
        self.body = ParagraphStyle("body", parent=styles["BodyText"])
        self.small = ParagraphStyle("small", parent=self.body, fontSize=7, leading=9)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=8, leading=10)
        self.flow: list[Flowable] = []

    def para(self, text: str, style: ParagraphStyle | None = None) -> None:
        self.flow.append(Paragraph(escape(_latin1(text)), style or self.body))

    def head(self, text: str) -> None:
        self.para(text, self.heading)

    def table(self, rows: list[list[str]], widths: list[float] | None = None) -> None:
        cells = [[Paragraph(escape(_latin1(c)), self.cell) for c in row] for row in rows]
        table = Table(cells, colWidths=widths, repeatRows=1)
        table.setStyle(_GRID)
        self.flow.append(table)
        self.flow.append(Spacer(1, 4 * mm))

    def hop(self, number: int, hop: Hop) -> None:
        words = self.words
        self.head(f"Hop {number}: {hop.seller} sold to {hop.buyer}")
        status = "verified" if hop.verified else "NOT verified"
        receipt = (
            "no final receipt"
            if hop.receipt is None
            else f"receipt signed by {'both' if hop.receipt.countersigned else 'NOT both'}:"
            f" {words.units(hop, hop.receipt.units)}, paid {words.amount(hop.receipt.paid)}"
        )
        anchored = (
            "no record anchored on chain"
            if hop.anchored_through is None
            else f"records up to no. {hop.anchored_through} anchored in block(s) "
            + ", ".join(str(b) for b in hop.anchor_blocks)
        )
        self.para(f"Records {status} ({hop.messages}); {receipt}; {anchored}.")
        self.para(
            f"Session 0x{hop.session.hex()}, channel 0x{hop.channel.hex()} on chain"
            f" {hop.chain_id}, record stream 0x{hop.stream.hex()}.",
            self.small,
        )
        rows = [["interval from", "delivered", "owed", "paid"]]
        rows += [
            [
                utc_time(i.start_ms),
                words.units(hop, i.units),
                words.amount(i.value),
                words.amount(i.paid),
            ]
            for i in hop.intervals
        ]
        rows.append(
            ["total", words.units(hop, hop.units), words.amount(hop.value), words.amount(hop.paid)]
        )
        self.table(rows)


def _summary_rows(report: AuditReport, words: Wording) -> list[list[str]]:
    rows = [["hop", "seller -> buyer", "delivered", "owed", "paid", "verified"]]
    rows += [
        [
            str(n),
            f"{hop.seller} -> {hop.buyer}",
            words.units(hop, hop.units),
            words.amount(hop.value),
            words.amount(hop.paid),
            "yes" if hop.verified else "NO",
        ]
        for n, hop in enumerate(report.hops, start=1)
    ]
    return rows


def render_pdf(signed: SignedReport, words: Wording | None = None) -> bytes:
    """The PDF of a signed report (see the module docstring)."""
    words = words or Wording()
    report = signed.report
    layout = _Layout(words)
    layout.flow.append(Paragraph(escape(words.title()), layout.title))
    for line in words.summary(report):
        layout.para(line)
    layout.head("How to read this report")
    for line in words.explanation():
        layout.para(line)
    layout.head("Summary")
    layout.table(
        _summary_rows(report, words), [10 * mm, 70 * mm, 22 * mm, 26 * mm, 26 * mm, 16 * mm]
    )
    if report.resellers:
        layout.head("Resellers")
        rows = [["reseller", "bought", "sold", "paid upstream", "received", "commission"]]
        rows += [
            [
                str(r.address),
                f"{r.bought:,} Wh",
                f"{r.sold:,} Wh",
                words.amount(r.paid_upstream),
                words.amount(r.received_downstream),
                words.amount(r.commission),
            ]
            for r in report.resellers
        ]
        layout.table(rows)
    layout.head("Discrepancies")
    if not report.discrepancies:
        layout.para("None.")
    for d in report.discrepancies:
        where = f" (stream 0x{d.stream.hex()})" if d.stream else ""
        layout.para(f"{d.code.value}{where}: {d.detail}")
    for number, hop in enumerate(report.hops, start=1):
        layout.hop(number, hop)
    layout.head("What was checked")
    for check in report.checks:
        layout.para(f"{'yes' if check.done else 'no'} - {check.what}: {check.detail}")
    layout.head("Signature")
    layout.para(
        f"Signed by {report.issuer} (EIP-191) over the report's canonical JSON:"
        f" 0x{signed.signature.hex()}. Check it with m2mpay audit verify on the JSON form.",
        layout.small,
    )
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        title=words.title(),
        author=str(report.issuer),
        subject=f"signature 0x{signed.signature.hex()}",
        creator="m2mpay audit",
        invariant=True,
    )
    document.build(layout.flow)
    return out.getvalue()
