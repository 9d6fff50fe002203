"""`m2mpay stream list|show|export|verify`: provenance streams, a node's or in a file.

`list`, `show` and `export` ask a running node (`--url`, `--token`); `verify` needs no
node for a file (a URL it fetches): it checks every message, in order, up to the first
problem, and exits 1 when there is one, naming it by its code and where it is. A
restricted stream's records are read only with its key (`--key`, as its QR code holds
it); without one they are said to be sealed, never guessed at. The provenance package
is imported only by the commands that verify (it loads the chain's code: seconds).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import httpx
import typer
from rich.markup import escape

from m2mpay.cli.common import JsonOption, console, err_console
from m2mpay.cli.remote import Remote, emit, fail, id_of, kv_table, remote_command, short
from m2mpay.cli.units import Units, local_time
from m2mpay.client import NodeClient, StreamSummary, StreamView
from m2mpay.client.base import MAX_ANSWER_BYTES
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError

if TYPE_CHECKING:
    from m2mpay.provenance import StreamRecord, Verified
    from m2mpay.provenance.stream_file import StreamFile

__all__ = ["record_text", "stream_app"]

stream_app = typer.Typer(
    help="Provenance streams: signed, hash-chained records of each session.",
    no_args_is_help=True,
)

StreamArg = Annotated[str, typer.Argument(help="The stream's id, or a unique prefix of it.")]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="A restricted stream's key, 64 hex digits (its QR code holds it after key=).",
        show_default=False,
    ),
]
_KEY_SIZE: Final = 32


def _key(text: str | None, as_json: bool) -> bytes | None:
    if text is None:
        return None
    body = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        key = bytes.fromhex(body)
    except ValueError:
        key = b""
    if len(key) != _KEY_SIZE:
        fail("--key is a stream key: 64 hex digits", "invalid_key", as_json=as_json)
    return key


async def _stream_id(node: NodeClient, given: str) -> str:
    return await id_of(given, "stream", node.streams, key=lambda s: s.stream_id)


def _row(stream: StreamSummary) -> Sequence[str]:
    anchored = "—" if stream.anchored_to is None else f"up to #{stream.anchored_to}"
    return [
        short(stream.stream_id),
        escape(stream.purpose),
        stream.access,
        short(stream.session or "—"),
        str(stream.count),
        local_time(stream.created_ms),
        anchored,
    ]


@remote_command(stream_app, "list")
def list_streams(
    author: Annotated[str | None, typer.Option(help="Only this author's streams.")] = None,
    session: Annotated[str | None, typer.Option(help="Only the streams of this session.")] = None,
    *,
    remote: Remote,
) -> None:
    """The streams the node holds, oldest first."""
    remote.answer_rows(
        "stream",
        lambda node: node.streams(author=author, session=session),
        _row,
        keep="id purpose access session messages",
        fold="created anchored",
    )


def record_text(record: StreamRecord, units: Units | None, token: Address | None = None) -> str:
    """One record for people: amounts in tokens when the node's `units` are known; a
    payment's and a receipt's in `token`, the one the stream last priced in (a payment
    record names its channel, not its asset; default: the node's token)."""
    from m2mpay.provenance import (
        MeterRecord,
        NoteRecord,
        PaymentRecord,
        PriceRecord,
        ReceiptRecord,
        SessionRecord,
    )

    def amount(value: int, asset: Address | None = token) -> str:
        return units.amount(value, asset) if units is not None else f"{value} (smallest unit)"

    match record:
        case SessionRecord():
            return (
                f"session 0x{record.session.hex()} on channel 0x{record.channel.hex()}: "
                f"{record.buyer} pays {record.pay_to}, by the {record.unit.value}"
            )
        case PriceRecord():
            return f"price {amount(record.price, record.token)}/{record.unit.value}"
        case MeterRecord():
            return (
                f"meter +{record.delta} {record.unit.value} (total {record.total}) "
                f"over {record.interval_ms / 1000:g} s"
            )
        case PaymentRecord():
            return (
                f"payment {amount(record.amount)} from {record.payer} "
                f"(total paid {amount(record.transferred)})"
            )
        case ReceiptRecord():
            forward = record.forward
            return (
                f"receipt: {forward.units} units worth {amount(forward.value)}, "
                f"paid {amount(forward.paid)}; {len(record.signatures)} signature(s)"
            )
        case NoteRecord():
            return f"note: {record.text}"
    return type(record).__name__


def _read(data: bytes) -> StreamFile:
    from m2mpay.provenance.stream_file import read_stream_file

    return read_stream_file(io.BytesIO(data))


def _verify(
    stream: StreamFile, key: bytes | None, stream_id: bytes | None = None
) -> tuple[Verified, bool]:
    """The verdict, and whether payloads were opened and checked: a public stream's
    always, a private one's with its key (else all but its sealed payloads). The file
    must be of `stream_id` when given (a QR code's), else of the one its header names."""
    from m2mpay.provenance import AccessMode, decode_root, verify
    from m2mpay.provenance.stream_format import StreamInvalid

    try:
        public = decode_root(stream.root).mode is AccessMode.PUBLIC
    except (StreamInvalid, ValueError):
        public = True  # verify names what is wrong with the root
    payloads = public or key is not None
    verified = verify(
        stream.root,
        stream.messages,
        key,
        stream_id=stream_id or stream.stream_id,
        count=stream.count,
        payloads=payloads,
    )
    return verified, payloads


@remote_command(stream_app, "show")
def show(
    stream: StreamArg,
    key: KeyOption = None,
    *,
    remote: Remote,
) -> None:
    """One stream: its root, head and anchors, and its records as far as they verify
    (a restricted stream's only with --key)."""
    read_key = _key(key, remote.as_json)

    async def work(node: NodeClient) -> None:
        stream_id = await _stream_id(node, stream)
        view = await node.stream(stream_id)
        verified, opened = _verify(_read(await node.stream_file(stream_id)), read_key)
        if remote.as_json:
            verdict = {**_verdict(verified, view.count), "payloads_checked": opened}
            emit({"stream": view, "verification": verdict})
            return
        _show(view, verified, await Units.load(node), sealed=not opened)

    remote.call(work)


def _said_written(written: dict[str, str | int]) -> None:
    console.print(
        f"wrote {written['messages']} message(s) and {written['anchors']} anchor "
        f"proof(s) to {escape(str(written['path']))}"
    )


def _show(view: StreamView, verified: Verified, units: Units, *, sealed: bool) -> None:
    from m2mpay.provenance import KeyGrant, PriceRecord

    anchors = [a for a in view.anchors if a.anchored]
    kv_table(
        f"stream {view.stream_id}",
        [
            ("purpose", view.purpose),
            ("author", view.author),
            ("access", view.access),
            ("created", local_time(view.created_ms)),
            ("session", view.session),
            ("messages", view.count),
            ("head", view.head),
            ("last written", None if view.head_ms is None else local_time(view.head_ms)),
            ("upstream", ", ".join(view.links) or None),
            (
                "anchored",
                ", ".join(f"#{a.head_index} in block {a.block_number}" for a in anchors) or None,
            ),
        ],
    )
    _say_verdict(verified, view.count)
    shown = [m for m in verified.messages if m.content is not None]
    if sealed and len(shown) < len(verified.messages):
        console.print(
            f"{len(verified.messages) - len(shown)} message(s) sealed: give --key (the "
            "key in the stream's QR code) to read them"
        )
    token = None
    for item in shown:
        message, content = item.message, item.content
        if isinstance(content, KeyGrant):
            text = f"keys of epoch {message.epoch} for {len(content.wraps)} subscriber(s)"
        else:
            assert content is not None
            if isinstance(content, PriceRecord):
                token = content.token
            text = record_text(content, units, token)
        console.print(f"#{message.index}  {local_time(message.timestamp_ms)}  {escape(text)}")


def _verdict(verified: Verified, count: int) -> dict[str, Any]:
    problem = verified.problem
    return {
        "ok": verified.ok,
        "stream_id": None if verified.root is None else "0x" + verified.root.stream_id.hex(),
        "verified": len(verified.messages),
        "count": count,
        "problem": None
        if problem is None
        else {
            "code": problem.code.value,
            "position": problem.position,
            "index": problem.index,
            "detail": problem.detail,
        },
    }


def _say_verdict(verified: Verified, count: int) -> None:
    problem = verified.problem
    if problem is None:
        console.print(f"[bold green]verified[/] {len(verified.messages)} message(s)")
        return
    where = "the root" if problem.position is None else f"message #{problem.position}"
    console.print(
        f"[bold red]NOT VERIFIED:[/] {problem.code.value} at {where}: {escape(problem.detail)}"
        f" ({len(verified.messages)} of {count} message(s) verified before it)"
    )


@remote_command(stream_app, "export")
def export(
    stream: StreamArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The file to write (default: 0x<id>.jsonl here)."),
    ] = None,
    *,
    remote: Remote,
) -> None:
    """Write the stream's file (JSON lines, with its anchor proofs) as the node serves it."""

    async def work(node: NodeClient) -> None:
        stream_id = await _stream_id(node, stream)
        data = await node.stream_file(stream_id)
        read = _read(data)  # a node's answer is checked before it is kept as a stream file
        path = out or Path(f"{stream_id}.jsonl")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        written: dict[str, str | int] = {
            "path": str(path),
            "messages": len(read.messages),
            "anchors": len(read.anchors),
        }
        remote.reply(written, _said_written)

    remote.call(work)


def _fetched(source: str) -> bytes:
    """A stream file from a URL (bounded, as the client reads answers) or a path."""
    if not source.startswith(("http://", "https://")):
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise M2MPayError(f"cannot read {source}: {exc.strerror}") from None
    body = bytearray()
    try:
        with httpx.stream("GET", source, timeout=60, follow_redirects=True) as response:
            if not response.is_success:
                raise M2MPayError(f"{source} answered {response.status_code}")
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise M2MPayError(f"{source} is larger than {MAX_ANSWER_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise M2MPayError(f"cannot fetch {source}: {exc}") from None
    return bytes(body)


@stream_app.command("verify")
def verify_file(
    source: Annotated[
        str,
        typer.Argument(
            help="A stream file, its http(s) URL, or a QR code's URL (the stream, where its "
            "file is and its key in the fragment)."
        ),
    ],
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a stream file offline (a URL is fetched first): every message in order,
    up to the first problem; exit code 1 if there is one."""
    from m2mpay.provenance.qr import parse_stream_code
    from m2mpay.provenance.stream_format import StreamInvalid

    read_key = _key(key, as_json)
    expected = None
    if "#" in source:  # a QR code's URL: its file is at `src`, its key in the fragment
        code = parse_stream_code(source)
        source, expected = code.src, code.stream_id
        read_key = read_key or code.key
    data = _fetched(source)
    try:
        stream = _read(data)
    except StreamInvalid as exc:
        if as_json:
            problem = {"code": exc.code, "position": None, "index": None, "detail": exc.message}
            emit({"ok": False, "stream_id": None, "verified": 0, "count": None, "problem": problem})
        else:
            err_console.print(f"[bold red]NOT VERIFIED:[/] {exc.code}: {escape(exc.message)}")
        raise typer.Exit(1) from None
    verified, opened = _verify(stream, read_key, expected)
    forged = [p for p in stream.anchors if p.check_offline()[1] is not None]
    ok = verified.ok and not forged
    if as_json:
        emit(
            {
                **_verdict(verified, stream.count),
                "ok": ok,
                "payloads_checked": opened,
                "anchors": len(stream.anchors),
                "anchors_forged": len(forged),
            }
        )
    else:
        _say_verdict(verified, stream.count)
        if stream.anchors:
            held = len(stream.anchors) - len(forged)
            console.print(
                f"{held} of {len(stream.anchors)} anchor proof(s) lead to their Merkle root "
                "(offline: the chain was not asked)"
            )
        if not opened:
            console.print("sealed payloads not opened: give --key to read and check them")
    if not ok:
        raise typer.Exit(1)
