"""A provenance stream's QR code: the URL it holds (format 1) round trips, a code of
another format is a named `QrFormatError`, the optional ledger (`rpc`) round trips and an
old code without it reads as before, the web reader's own parser (fragment.js, in Node)
agrees both ways, jsQR reads segno's image back; and the reader's mount serves the
page and a store's stream files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette

from m2mpay.errors import ProvenanceError
from m2mpay.provenance import MemoryStreamStore, ProvenanceStream, StreamWriter, read_stream_file
from m2mpay.provenance.qr import QrFormatError, StreamCode, parse_stream_code, qr_png, qr_svg
from m2mpay.provenance.reader_app import READER_ASSETS, reader_mount, stream_file_path
from tests.provenance.qr_kit import png_grey
from tests.provenance.streams_kit import AUTHOR, Clock, in_node, records

DRIVER = Path(__file__).with_name("qr_reader.mjs")
READER = "https://node.example:8443/provenance/reader/"
SRC = "https://node.example:8443/provenance/streams/0x" + "ab" * 32 + ".jsonl?a=1&b=c d"
CODE = StreamCode(bytes.fromhex("ab" * 32), SRC, bytes(range(32)))
RPC = "http://127.0.0.1:8545/?a=1&b=c"
WITH_RPC = StreamCode(CODE.stream_id, SRC, CODE.key, RPC)

NOT_OURS = [
    "https://example.com/",  # no fragment
    READER + "#",
    READER + "#id=" + "ab" * 32,  # no version
    READER + "#m2mpay-stream=2&id=" + "ab" * 32 + "&src=https%3A%2F%2Fx%2F",
    READER + "#m2mpay-stream=1&id=" + "AB" * 32 + "&src=https%3A%2F%2Fx%2F",
    READER + "#m2mpay-stream=1&id=" + "ab" * 31 + "&src=https%3A%2F%2Fx%2F",
    READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=ftp%3A%2F%2Fx%2F",
    READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=%2Frelative",
    READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=https%3A%2F%2Fx%2F&key=0G",
    READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=https%3A%2F%2Fx%2F&key=abc",
    READER + "#m2mpay-stream=1&m2mpay-stream=1&id=" + "ab" * 32 + "&src=https%3A%2F%2Fx%2F",
    READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=https%3A%2F%2Fx%2F&extra=1",
    READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=https%3A%2F%2Fx%2F&rpc=ws%3A%2F%2Fx%2F",
    READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=https%3A%2F%2Fx%2F&rpc=",
    READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=https%3A%2F%2Fx%2F&rpc=a&rpc=a",
    "WIFI:S:cafe;T:WPA;P:secret;;",
    "#ethereum:0x0000000000000000000000000000000000000000",
]


def _in_js(cases: list[dict[str, Any]]) -> list[Any]:
    answers: list[Any] = in_node([str(DRIVER)], cases, timeout=120)
    return answers


def test_a_stream_code_round_trips_through_its_url() -> None:
    url = CODE.url(READER)
    assert url.startswith(READER + "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=https%3A%2F%2F")
    assert url.endswith("&key=" + bytes(range(32)).hex())
    assert parse_stream_code(url) == CODE
    assert parse_stream_code("#" + CODE.fragment()) == CODE
    public = StreamCode(CODE.stream_id, SRC)
    assert "key=" not in public.url(READER)
    assert parse_stream_code(public.url(READER)) == public
    # A key cut short still parses: verify names it wrong_key, as the reader shows.
    short = StreamCode(CODE.stream_id, SRC, bytes(16))
    assert parse_stream_code(short.url(READER)) == short
    with pytest.raises(ValueError, match="fragment"):
        CODE.url(READER + "#x")
    with pytest.raises(ValueError, match="32 bytes"):
        StreamCode(bytes(31), SRC)


def test_a_code_carries_its_ledger_and_an_old_code_reads_as_before() -> None:
    url = WITH_RPC.url(READER)
    assert url.endswith("&key=" + bytes(range(32)).hex() + "&rpc=" + quote(RPC, safe=""))
    assert parse_stream_code(url) == WITH_RPC
    # A code made before the field existed: the same fields, no ledger.
    assert "rpc=" not in CODE.url(READER)
    assert parse_stream_code(CODE.url(READER)).rpc is None
    with pytest.raises(ValueError, match="rpc is an absolute"):
        StreamCode(CODE.stream_id, SRC, rpc="ws://127.0.0.1:8545")


@pytest.mark.parametrize("text", NOT_OURS)
def test_a_code_of_another_format_is_named(text: str) -> None:
    with pytest.raises(QrFormatError) as caught:
        parse_stream_code(text)
    assert caught.value.code == "qr_format"
    assert isinstance(caught.value, ProvenanceError)


def test_the_reader_parses_and_writes_fragments_as_python_does() -> None:
    made = {"streamId": CODE.stream_id.hex(), "src": SRC, "key": bytes(range(32)).hex()}
    cases: list[dict[str, Any]] = [{"parse": CODE.url(READER)}, {"make": made}]
    cases += [{"parse": text} for text in NOT_OURS]
    made_rpc = made | {"rpc": RPC}
    cases += [{"parse": WITH_RPC.url(READER)}, {"make": made_rpc}]
    parsed, written, *refused, parsed_rpc, written_rpc = _in_js(cases)
    assert parsed == made  # an old code: no rpc field at all
    assert parse_stream_code("#" + written) == CODE
    assert refused == [{"error": "qr_format"}] * len(NOT_OURS)
    assert parsed_rpc == made_rpc
    assert written_rpc == WITH_RPC.fragment()
    assert parse_stream_code("#" + written_rpc) == WITH_RPC


def test_segno_draws_a_code_jsqr_reads_back() -> None:
    url = CODE.url(READER)
    width, height, rows = png_grey(qr_png(url))
    assert width == height > 200
    (read,) = _in_js([{"pixels": b"".join(rows).hex(), "width": width, "height": height}])
    assert read == url
    svg = qr_svg(url)
    assert svg.startswith(b"<?xml")
    assert b"<svg" in svg


async def test_the_mount_serves_the_reader_and_a_stores_stream_files() -> None:
    assert (READER_ASSETS / "reader.js").is_file(), "run make test: it builds the reader's assets"
    async with MemoryStreamStore() as store:
        writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=Clock())
        await writer.append_many(records(3))
        stream = await ProvenanceStream.load(store, writer.stream_id)
        app = Starlette(routes=[reader_mount(store, "/provenance")])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
            page = await http.get("/provenance/reader/")
            assert page.status_code == 200
            assert '<script type="module" src="reader.js">' in page.text
            bundle = await http.get("/provenance/reader/reader.js")
            assert bundle.status_code == 200
            assert "javascript" in bundle.headers["content-type"]
            served = await http.get("/provenance" + stream_file_path(writer.stream_id))
            assert served.status_code == 200
            assert served.headers["access-control-allow-origin"] == "*"
            assert served.headers["content-type"] == "application/x-ndjson"
            read = read_stream_file(io.BytesIO(served.content))
            assert read.messages == tuple(m.raw for m in stream.messages)
            assert read.verify(writer.key()).ok
            unknown = await http.get("/provenance" + stream_file_path(bytes(32)))
            assert unknown.status_code == 404
            misnamed = await http.get("/provenance/streams/" + writer.stream_id.hex())
            assert misnamed.status_code == 404


def test_a_source_url_with_a_stray_bracket_is_a_format_error() -> None:
    # Found by the fuzz suite: urllib raised ValueError("Invalid IPv6 URL").
    code = "#m2mpay-stream=1&id=" + "ab" * 32 + "&src=http://[example.com/s.jsonl"
    with pytest.raises(QrFormatError, match="src is not an absolute"):
        parse_stream_code(code)
