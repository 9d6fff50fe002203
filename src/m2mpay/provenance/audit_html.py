"""The audit report as a page an authority reads: self-contained HTML, plain language.

No script, font or stylesheet is fetched from anywhere: the style is inline. The page
carries the signed report it was rendered from (`<script type="application/json"
id="m2mpay-audit-report">`, never run), which `m2mpay audit verify report.html` checks
against the issuing node's signature (`signed_report_in_html`); the visible text is a
rendering of it, which the signature does not cover byte for byte.

The wording (`Wording`) is shared with the PDF (`audit_pdf`): what a hop is, what was
measured, what was paid, said without channels or streams.
"""

from __future__ import annotations

import datetime
import html
import re
from dataclasses import dataclass
from typing import Final

from m2mpay.errors import ProvenanceError
from m2mpay.provenance.audit_report import (
    AuditReport,
    Hop,
    SignedReport,
    read_signed_report,
)

__all__ = ["Wording", "render_html", "signed_report_in_html", "utc_time"]

_EMBED_ID: Final = "m2mpay-audit-report"
_EMBEDDED: Final = re.compile(
    rb'<script type="application/json" id="m2mpay-audit-report">(.*?)</script>', re.DOTALL
)

_STYLE: Final = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}
th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1d6b2a;font-weight:600}.bad{color:#a4161a;font-weight:600}
.id{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all}
.note{color:#555}
"""


def utc_time(ms: int) -> str:
    """A moment as people read it, in UTC (an authority's time zone is not ours to guess)."""
    at = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _minutes(ms: int) -> str:
    if ms % 60_000 == 0:
        return f"{ms // 60_000} minutes"
    return f"{ms / 1000:g} seconds"


@dataclass(frozen=True, slots=True)
class Wording:
    """How amounts are written: token units divided by 10**decimals, with a symbol; by
    default the smallest units, as the chain counts them."""

    decimals: int = 0
    symbol: str = "token units"

    def amount(self, value: int | str) -> str:
        number = int(value)
        sign, number = ("-" if number < 0 else ""), abs(number)
        if self.decimals == 0:
            return f"{sign}{number:,} {self.symbol}"
        whole, part = divmod(number, 10**self.decimals)
        fraction = str(part).rjust(self.decimals, "0").rstrip("0")
        return f"{sign}{whole:,}{'.' + fraction if fraction else ''} {self.symbol}"

    def units(self, hop: Hop, value: int) -> str:
        return f"{value:,} {hop.unit.value}"

    def title(self) -> str:
        return "Audit report: energy delivered against payments made"

    def summary(self, report: AuditReport) -> list[str]:
        verdict = (
            "No discrepancy was found."
            if report.clean
            else f"{len(report.discrepancies)} discrepancies were found; each is listed below"
            " with its reason."
        )
        return [
            f"Issued on {utc_time(report.issued_ms)} by the node whose key is {report.issuer}.",
            f"It covers {utc_time(report.from_ms)} to {utc_time(report.to_ms)}, in intervals of"
            f" {_minutes(report.interval_ms)}, along a chain of {len(report.hops)} sales.",
            verdict,
        ]

    def explanation(self) -> list[str]:
        return [
            "A hop is one sale: a seller delivered energy to a buyer and was paid for it."
            " Along a chain, a reseller buys on one hop and sells on the next (a wind"
            " turbine sells to a charger, the charger to a car).",
            "What was measured: the seller's meter reported the energy delivered (in Wh)"
            " every so often; each reading is a record signed with the seller's key, the"
            " same key that receives the payments, and chained to the record before, so no"
            " reading can be changed, removed or added afterwards without it showing.",
            "What was paid: each payment the seller received is recorded the same way; at"
            " the end, both parties signed a receipt of the totals. Owed is what the"
            " energy cost at the prices the seller announced; paid is what was received.",
            "Commission: what a reseller received from its buyers minus what it paid its"
            " own seller, in the same period.",
            "Anchored: a fingerprint of the records was written to a public blockchain, in"
            " the block named, which dates them and makes any later change evident.",
        ]


def _cell(text: object, numeric: bool = False) -> str:
    return f"<td{' class=n' if numeric else ''}>{html.escape(str(text))}</td>"


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(cells) + "</tr>"


def _head(*names: str, numeric_from: int = 99) -> str:
    return _row(
        [
            f"<th{' class=n' if i >= numeric_from else ''}>{html.escape(n)}</th>"
            for i, n in enumerate(names)
        ]
    )


def _hop_section(report: AuditReport, number: int, hop: Hop, words: Wording) -> str:
    receipt = (
        "no final receipt"
        if hop.receipt is None
        else f"receipt: {words.units(hop, hop.receipt.units)}, owed"
        f" {words.amount(hop.receipt.value)}, paid {words.amount(hop.receipt.paid)}"
        + ("; signed by both" if hop.receipt.countersigned else "; NOT signed by both")
    )
    anchored = (
        "no record is anchored on chain"
        if hop.anchored_through is None
        else f"records up to no. {hop.anchored_through} anchored in block(s) "
        + ", ".join(str(b) for b in hop.anchor_blocks)
    )
    rows = [
        _row(
            [
                _cell(utc_time(i.start_ms)),
                _cell(words.units(hop, i.units), True),
                _cell(words.amount(i.value), True),
                _cell(words.amount(i.paid), True),
            ]
        )
        for i in hop.intervals
    ]
    status = (
        "<span class=ok>verified</span>" if hop.verified else "<span class=bad>NOT verified</span>"
    )
    return "\n".join(
        [
            f"<h2>Hop {number}: {html.escape(str(hop.seller))} sold to"
            f" {html.escape(str(hop.buyer))}</h2>",
            f"<p>Records {status} ({hop.messages} records); {html.escape(receipt)};"
            f" {html.escape(anchored)}.</p>",
            f"<p class=note>Session <span class=id>0x{hop.session.hex()}</span>, payment"
            f" channel <span class=id>0x{hop.channel.hex()}</span> on chain {hop.chain_id},"
            f" record stream <span class=id>0x{hop.stream.hex()}</span>.</p>",
            "<table>",
            _head("interval from", "delivered", "owed", "paid", numeric_from=1),
            *rows,
            _row(
                [
                    "<th>total</th>",
                    _cell(words.units(hop, hop.units), True),
                    _cell(words.amount(hop.value), True),
                    _cell(words.amount(hop.paid), True),
                ]
            ),
            "</table>",
        ]
    )


def render_html(signed: SignedReport, words: Wording | None = None) -> str:
    """The page of a signed report (see the module docstring)."""
    words = words or Wording()
    report = signed.report
    hops = "\n".join(
        _hop_section(report, n, hop, words) for n, hop in enumerate(report.hops, start=1)
    )
    summary = [
        _row(
            [
                _cell(n),
                _cell(f"{hop.seller} → {hop.buyer}"),
                _cell(words.units(hop, hop.units), True),
                _cell(words.amount(hop.value), True),
                _cell(words.amount(hop.paid), True),
                _cell("yes" if hop.verified else "NO"),
            ]
        )
        for n, hop in enumerate(report.hops, start=1)
    ]
    resellers = [
        _row(
            [
                _cell(r.address),
                _cell(f"{r.bought:,} Wh", True),
                _cell(f"{r.sold:,} Wh", True),
                _cell(words.amount(r.paid_upstream), True),
                _cell(words.amount(r.received_downstream), True),
                _cell(words.amount(r.commission), True),
            ]
        )
        for r in report.resellers
    ]
    found = [
        f"<li><b>{html.escape(d.code.value)}</b>"
        + (f" (stream <span class=id>0x{d.stream.hex()}</span>)" if d.stream else "")
        + f": {html.escape(d.detail)}</li>"
        for d in report.discrepancies
    ]
    checks = [
        f"<li>{'✔' if c.done else '✘'} {html.escape(c.what)}: {html.escape(c.detail)}</li>"
        for c in report.checks
    ]
    embedded = signed.to_json().decode().strip().replace("<", "\\u003c")
    verdict = "ok" if report.clean else "bad"
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f"<title>{html.escape(words.title())}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{html.escape(words.title())}</h1>",
            *(
                f"<p{' class=' + verdict if i == 2 else ''}>{html.escape(line)}</p>"
                for i, line in enumerate(words.summary(report))
            ),
            "<h2>How to read this report</h2>",
            *(f"<p>{html.escape(line)}</p>" for line in words.explanation()),
            "<h2>Summary</h2><table>",
            _head("hop", "seller → buyer", "delivered", "owed", "paid", "verified", numeric_from=2),
            *summary,
            "</table>",
            *(
                [
                    "<h2>Resellers</h2><table>",
                    _head(
                        "reseller",
                        "bought",
                        "sold",
                        "paid upstream",
                        "received downstream",
                        "commission",
                        numeric_from=1,
                    ),
                    *resellers,
                    "</table>",
                ]
                if resellers
                else []
            ),
            "<h2>Discrepancies</h2>",
            f"<ul>{''.join(found)}</ul>" if found else "<p class=ok>None.</p>",
            hops,
            "<h2>What was checked</h2>",
            f"<ul>{''.join(checks)}</ul>",
            "<h2>Signature</h2>",
            f"<p>Signed by <span class=id>{report.issuer}</span> (EIP-191):"
            f" <span class=id>0x{signed.signature.hex()}</span>. Check it, and that this page"
            " says what was signed, with <code>m2mpay audit verify</code> on this file.</p>",
            f'<script type="application/json" id="{_EMBED_ID}">{embedded}</script>',
            "</body></html>",
            "",
        ]
    )


def signed_report_in_html(page: bytes) -> SignedReport:
    """The signed report a page carries (its signature not yet checked)."""
    found = _EMBEDDED.search(page)
    if found is None:
        raise ProvenanceError("bad_report", "the page carries no signed audit report")
    return read_signed_report(found.group(1))
