"""`m2mpay audit`: the signed audit report of a value chain, and `audit verify`.

    m2mpay audit --stream 0x<id> --out report.html          # a running node issues it
    m2mpay audit --stream sale.jsonl --out report.pdf       # from stream files, here
    m2mpay audit --stream 'https://…/reader/#m2mpay-stream=1&id=…' --out report.json
    m2mpay audit verify report.json                         # or report.html

With a stream id the node at `--url` builds the report from its store and signs it
(`POST /v1/audit`). With a file or an http(s) URL (a stream file's, or a stream code's
with the key in its fragment) the report is built here and signed with the node key of
`--data-dir`; upstream streams are looked for beside the first (`0x<id>.jsonl` in the
same folder or under the same URL) and among further `--stream`s; their anchors are
checked against `--rpc-url`'s chain if given, else offline. The format is the output's
suffix (.json, .html, .pdf) or `--format`.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from pathlib import Path
from typing import Annotated, Final

import httpx
import typer

from m2mpay.cli.common import DEFAULT_DATA_DIR, DataDirOption, PassphraseFileOption, report_error
from m2mpay.cli.key import passphrase
from m2mpay.cli.remote import TokenOption, UrlOption
from m2mpay.client import DEFAULT_URL, NodeClient
from m2mpay.crypto import Address, PrivateKey
from m2mpay.crypto.keystore import KEYSTORE_DIR, find_keystore, load_keystore
from m2mpay.errors import M2MPayError, ProvenanceError
from m2mpay.provenance.audit import DEFAULT_INTERVAL_MS, AuditRange
from m2mpay.provenance.audit_html import Wording, signed_report_in_html, utc_time
from m2mpay.provenance.audit_out import ReportFormat, format_of, render_report, write_report
from m2mpay.provenance.audit_report import SignedReport, read_signed_report
from m2mpay.provenance.audit_sources import (
    StreamLibrary,
    audit_chain,
    fetch_from,
    fetch_stream_file,
    parse_stream_file,
)
from m2mpay.provenance.qr import parse_stream_code
from m2mpay.provenance.stream_file import StreamFile

__all__ = ["audit_app"]

_STREAM_ID: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_DURATION: Final = re.compile(r"([0-9]+)(ms|s|m|h|d)?")
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

audit_app = typer.Typer(
    add_completion=False,
    help="The signed audit report of a value chain: energy against money per hop.",
)


def _say(text: str) -> None:
    typer.echo(text, err=True)  # progress on stderr: stdout stays for what is asked


def _moment(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        at = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{option}: epoch milliseconds or an ISO time (2026-09-21T14:00Z), not {text!r}"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.UTC)  # a report is in UTC: say so rather than guess
    return int(at.timestamp() * 1000)


def _duration(text: str) -> int:
    found = _DURATION.fullmatch(text.strip())
    if found is None or int(found.group(1)) == 0:
        raise typer.BadParameter(f"--interval: a length such as 15m, 1h or 900000, not {text!r}")
    return int(found.group(1)) * _UNIT_MS[found.group(2) or "ms"]


def _format(out: Path, asked: str | None) -> ReportFormat:
    chosen = format_of(out, asked)
    if chosen is not None:
        return chosen
    raise typer.BadParameter("--out ends in .json, .html or .pdf, or give --format")


def _keys(given: list[str]) -> dict[bytes, bytes]:
    keys = {}
    for item in given:
        stream, _, key = item.partition("=")
        if not _STREAM_ID.fullmatch(stream) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", key):
            raise typer.BadParameter(f"--key is 0x<stream id>=0x<64 hex digits>, not {item!r}")
        keys[bytes.fromhex(stream[2:])] = bytes.fromhex(key[2:])
    return keys


def _node_key(data_dir: Path, passphrase_file: Path | None) -> PrivateKey:
    path = find_keystore(data_dir / KEYSTORE_DIR)
    if path is None:
        raise typer.BadParameter(
            f"no node key in {data_dir / KEYSTORE_DIR} to sign with: give the node's"
            " --data-dir, or a stream id to have a running node issue the report"
        )
    return load_keystore(path, passphrase(passphrase_file, confirm=False))


def _read_file(path: Path) -> StreamFile | None:
    """The stream file at `path`; None if there is no file."""
    if not path.is_file():
        return None
    return parse_stream_file(path.read_bytes(), str(path))


class _Sources:
    """The streams named on the command line, and where their upstream ones may be."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.files: list[StreamFile] = []
        self.keys: dict[bytes, bytes] = {}
        self.folders: list[Path] = []
        self.bases: list[str] = []

    async def add(self, given: str) -> bytes:
        where = given
        if given.startswith(("http://", "https://")):
            # Said as the file's URL, never as given: a stream code's fragment holds a key.
            src = where = given.split("#", 1)[0]
            if "#" in given:
                code = parse_stream_code(given)
                src = where = code.src
                if code.key is not None:
                    self.keys[code.stream_id] = code.key
            found = await fetch_stream_file(self.http, src)
            if found is None:
                raise ProvenanceError("unknown_stream", f"{src}: no stream file there")
            self.bases.append(src.rsplit("/", 1)[0])
        else:
            path = Path(given)
            read = await asyncio.to_thread(_read_file, path)
            if read is None:
                raise typer.BadParameter(f"--stream {given}: no such file, URL or stream id")
            found = read
            self.folders.append(path.parent)
        _say(f"read stream 0x{found.stream_id.hex()} ({found.count} records) from {where}")
        self.files.append(found)
        return found.stream_id

    async def fetch(self, stream_id: bytes) -> StreamFile | None:
        """An upstream stream beside those given: in their folders, under their URLs."""
        name = f"0x{stream_id.hex()}.jsonl"
        for folder in self.folders:
            found = await asyncio.to_thread(_read_file, folder / name)
            if found is not None:
                _say(f"following the link upstream to {folder / name}")
                return found
        found = await fetch_from(self.http, self.bases, _say)(stream_id)
        if found is not None:
            return found
        _say(f"upstream stream 0x{stream_id.hex()} not found")
        return None


async def _local(
    streams: list[str],
    key: PrivateKey,
    span: AuditRange,
    keys: dict[bytes, bytes],
    rpc_url: str | None,
) -> SignedReport:
    async with httpx.AsyncClient(timeout=60.0, follow_redirects=True) as http:
        sources = _Sources(http)
        start = await sources.add(streams[0])
        for more in streams[1:]:
            await sources.add(more)
        library = StreamLibrary(
            files=sources.files,
            fetch=sources.fetch,
            keys={**sources.keys, **keys},
            author=key,
        )
        if rpc_url is None:
            _say("no --rpc-url: anchor proofs checked offline, not against the chain")
            return await audit_chain(library, start, key, span=span)
        from m2mpay.cli.ledger_access import open_ledger  # the chain's libraries load slowly

        async with open_ledger(None, rpc_url) as ledger:
            _say(f"checking anchors against {ledger.caip2}")
            return await audit_chain(library, start, key, span=span, ledger=ledger)


def _summary(signed: SignedReport) -> str:
    report = signed.report
    found = len(report.discrepancies)
    return (
        f"{len(report.hops)} hops, {utc_time(report.from_ms)} to {utc_time(report.to_ms)},"
        f" {'no discrepancy' if not found else f'{found} discrepancies'};"
        f" signed by {report.issuer}"
    )


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    stream: Annotated[
        list[str] | None,
        typer.Option(
            "--stream",
            help="The last sale's stream: its id (a running node's), its file or URL;"
            " repeat for upstream files elsewhere.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="report.json, .html or .pdf")] = None,
    format: Annotated[str | None, typer.Option("--format", help="json, html or pdf")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="ISO time or epoch ms")] = None,
    to: Annotated[str | None, typer.Option("--to", help="ISO time or epoch ms (excluded)")] = None,
    interval: Annotated[str, typer.Option(help="15m, 1h, 900s …")] = "15m",
    credit_window: Annotated[
        int, typer.Option(min=0, help="Units a seller may deliver ahead of payment.")
    ] = 0,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="0x<stream id>=0x<key> of a restricted upstream stream"),
    ] = None,
    decimals: Annotated[int, typer.Option(min=0, max=36, help="The token's decimals.")] = 0,
    symbol: Annotated[str, typer.Option(help="The token's symbol.")] = "token units",
    rpc_url: Annotated[
        str | None, typer.Option("--rpc-url", help="Check anchors on this chain (files).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Write the signed audit report of the value chain ending in --stream to --out."""
    if ctx.invoked_subcommand is not None:
        return
    if not stream or out is None:
        raise typer.BadParameter("give --stream and --out (or: m2mpay audit verify FILE)")
    chosen = _format(out, format)
    span = AuditRange(
        _moment(from_, "--from"), _moment(to, "--to"), _duration(interval), credit_window
    )
    keys = _keys(key or [])
    words = Wording(decimals, symbol) if decimals or symbol != "token units" else Wording()
    try:
        if _STREAM_ID.fullmatch(stream[0]) and not Path(stream[0]).exists():
            _say(f"asking the node at {url} for the report")
            content = asyncio.run(_remote(url, token, stream[0], chosen, span, keys))
            described = f"{chosen} report issued by the node at {url}"
        else:
            signer = _node_key(data_dir, passphrase_file)
            signed = asyncio.run(_local(stream, signer, span, keys, rpc_url))
            content = render_report(signed, chosen, words)
            described = _summary(signed)
    except M2MPayError as exc:
        report_error(exc)
    except httpx.HTTPError as exc:
        report_error(ProvenanceError("unreachable", f"{exc.request.url}: {exc}"))
    write_report(content, out)
    _say(described)
    typer.echo(str(out))


async def _remote(
    url: str,
    token: str | None,
    stream: str,
    chosen: ReportFormat,
    span: AuditRange,
    keys: dict[bytes, bytes],
) -> bytes:
    async with NodeClient(url, token) as node:
        return await node.audit(
            stream.lower(),
            format=chosen,
            from_ms=span.from_ms,
            to_ms=span.to_ms,
            interval_ms=span.interval_ms if span.interval_ms != DEFAULT_INTERVAL_MS else None,
            credit_window=span.credit_window or None,
            keys={"0x" + s.hex(): "0x" + k.hex() for s, k in keys.items()} or None,
        )


@audit_app.command("verify")
def verify_command(
    report: Annotated[Path, typer.Argument(help="A report as JSON or HTML.")],
    issuer: Annotated[
        str | None, typer.Option(help="The address that must have signed it.")
    ] = None,
) -> None:
    """Check that a report is signed by its issuer and unchanged since."""
    try:
        data = report.read_bytes()
        signed = (
            signed_report_in_html(data) if data.lstrip()[:1] == b"<" else read_signed_report(data)
        )
        signed.check(Address(issuer) if issuer else None)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {report}: {exc.strerror}") from None
    except M2MPayError as exc:
        report_error(exc)
    typer.echo(f"valid: {_summary(signed)}")
