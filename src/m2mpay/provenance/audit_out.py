"""A signed audit report in the format asked for, and written to a file.

One place decides the formats (`REPORT_FORMATS`: the signed JSON, the HTML page, the
PDF), what a file's suffix means, and how a report reaches the disk (whole or not at
all: a temporary file renamed into place), for the CLI, the API route and a program
that holds a stream store (`save_audit_report`, what a demo calls at its end).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final, Literal

from m2mpay.chain.ledger import Ledger
from m2mpay.crypto import PrivateKey
from m2mpay.errors import ProvenanceError
from m2mpay.provenance.audit import AuditRange
from m2mpay.provenance.audit_html import Wording, render_html
from m2mpay.provenance.audit_report import SignedReport
from m2mpay.provenance.audit_sources import Fetch, StreamLibrary, audit_chain
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_store import StreamStore

__all__ = [
    "MEDIA_TYPES",
    "REPORT_FORMATS",
    "ReportFormat",
    "format_of",
    "render_report",
    "save_audit_report",
    "write_report",
]

ReportFormat = Literal["json", "html", "pdf"]
REPORT_FORMATS: Final[dict[str, ReportFormat]] = {"json": "json", "html": "html", "pdf": "pdf"}
MEDIA_TYPES: Final[dict[ReportFormat, str]] = {
    "json": "application/json",
    "html": "text/html",
    "pdf": "application/pdf",
}
_SUFFIXES: Final[dict[str, ReportFormat]] = {
    ".json": "json",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}


def format_of(path: Path, asked: str | None = None) -> ReportFormat | None:
    """The format `asked` for, else the one `path`'s suffix names; None if neither."""
    if asked is not None:
        return REPORT_FORMATS.get(asked)
    return _SUFFIXES.get(path.suffix.lower())


def render_report(
    signed: SignedReport, chosen: ReportFormat, words: Wording | None = None
) -> bytes:
    if chosen == "html":
        return render_html(signed, words).encode()
    if chosen == "pdf":
        # ReportLab (and Pillow under it) loads only when a PDF is asked for: a command's
        # --help, or a node that never renders one, does not pay for it.
        from m2mpay.provenance.audit_pdf import render_pdf

        return render_pdf(signed, words)
    return signed.to_json()


def write_report(content: bytes, path: Path) -> Path:
    """Write `content` to `path` whole or not at all (fsynced, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    return path


async def save_audit_report(
    store: StreamStore,
    stream_id: bytes,
    key: PrivateKey,
    path: Path,
    *,
    anchorer: StreamAnchorer | None = None,
    fetch: Fetch | None = None,
    ledger: Ledger | None = None,
    span: AuditRange | None = None,
    words: Wording | None = None,
) -> Path:
    """The report of the chain ending in `stream_id`, from `store`, signed by `key` (the
    node's) and written to `path` in the format its suffix names (the HTML page for a
    demo's end); upstream streams the store lacks are asked of `fetch`; returns `path`."""
    chosen = format_of(path)
    if chosen is None:
        raise ProvenanceError("bad_format", f"{path.name}: a report is .json, .html or .pdf")
    library = StreamLibrary(store=store, anchorer=anchorer, fetch=fetch, author=key)
    signed = await audit_chain(library, stream_id, key, span=span, ledger=ledger)
    content = render_report(signed, chosen, words)
    return await asyncio.to_thread(write_report, content, path)
