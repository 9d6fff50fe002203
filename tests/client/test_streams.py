"""Provenance streams through the SDK and `m2mpay stream` against a real `m2mpay node`
process, whose `streams.db` holds a restricted stream (a device's: the node cannot read
it) and a public one, written before it started: listed, shown, paged, exported, and
verified by the node, by the SDK's caller and offline by the command, which exits 1 on
a tampered or reordered file and names the problem and where it is."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from m2mpay.bench.daemons import NodeProcess
from m2mpay.cli.stream import record_text
from m2mpay.cli.units import Units
from m2mpay.client import NodeClient
from m2mpay.errors import ApiInvalidInput, ApiNotFound
from m2mpay.provenance import (
    AccessMode,
    MeterUnit,
    PaymentRecord,
    PriceRecord,
    SqliteStreamStore,
    StreamWriter,
    read_stream_file,
)
from m2mpay.provenance.qr import StreamCode, parse_stream_code
from tests.cli.conftest import cli
from tests.provenance.streams_kit import AUTHOR, TOKEN, Clock, records

UNKNOWN = "0x" + "ab" * 32


@dataclass
class Held:
    node: NodeProcess
    token: str
    sealed: str  # the restricted stream's id
    key: bytes  # its key
    public: str


async def _write(path: Path) -> tuple[str, bytes, str]:
    async with SqliteStreamStore(path) as store:
        clock = Clock()
        sealed = await StreamWriter.create(store, AUTHOR, purpose="turbine", now_ms=clock)
        await sealed.append_many(records(5))
        public = await StreamWriter.create(
            store, AUTHOR, purpose="lamp", access=AccessMode.PUBLIC, now_ms=clock
        )
        await public.append_many(records(3))
        return "0x" + sealed.stream_id.hex(), sealed.key(), "0x" + public.stream_id.hex()


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Held]:
    data_dir = tmp_path_factory.mktemp("streams") / "node"
    data_dir.mkdir()
    sealed, key, public = asyncio.run(_write(data_dir / "streams.db"))
    node = NodeProcess(data_dir)
    token = node.start()["api_token"]
    try:
        yield Held(node, token, sealed, key, public)
    finally:
        node.stop()


def _as(held: Held, *args: str) -> tuple[int, str]:
    result = cli(*args, M2MPAY_URL=held.node.url, M2MPAY_TOKEN=held.token)
    return result.exit_code, result.output


async def test_the_sdk_reads_what_the_node_holds(held: Held) -> None:
    async with NodeClient(held.node.url, held.token) as node:
        listed = await node.streams()
        assert [s.stream_id for s in listed] == [held.sealed, held.public]
        assert [(s.access, s.count, s.session) for s in listed] == [
            ("restricted", 5, None),  # not its stream: the node reads no session in it
            ("public", 3, None),
        ]
        shown = await node.stream(held.sealed)
        assert shown.author == AUTHOR.address
        assert shown.file == f"/v1/streams/{held.sealed}.jsonl"
        page = await node.stream_messages(held.sealed, start=3, limit=5)
        assert [m.index for m in page.messages] == [3, 4]
        assert page.next is None
        read = read_stream_file(io.BytesIO(await node.stream_file(held.sealed)))
        assert read.verify(held.key).ok
        report = await node.verify_stream(held.sealed)
        assert (report.ok, report.verified, report.payloads_checked) == (True, 5, False)
        assert (await node.verify_stream(held.public)).payloads_checked
        assert (await node.stream_qr(held.public, "png")).startswith(b"\x89PNG")
        link = await node.stream_reader_link(held.public)
        assert (link.stream_id, link.keyed) == (held.public, False)
        assert parse_stream_code(link.url).stream_id.hex() == held.public[2:]
        # Another author's restricted stream: the node has no key to put in the link.
        assert not (await node.stream_reader_link(held.sealed)).keyed
        with pytest.raises(ApiNotFound):
            await node.stream(UNKNOWN)
        with pytest.raises(ApiInvalidInput):
            await node.stream_file("0x1234")
    async with NodeClient(held.node.url) as anonymous:  # by id a stream is public
        assert (await anonymous.stream(held.public)).count == 3


def test_list_and_show_tell_what_is_sealed_and_read_it_with_the_key(held: Held) -> None:
    code, out = _as(held, "stream", "list")
    assert code == 0, out
    assert "turbine" in out
    assert "lamp" in out
    code, out = _as(held, "stream", "show", held.sealed[:10])
    assert code == 0, out
    assert "verified 5 message(s)" in out
    assert "5 message(s) sealed: give --key" in out
    assert "meter +" not in out
    code, out = _as(held, "stream", "show", held.sealed, "--key", held.key.hex())
    assert code == 0, out
    assert "meter +251 Wh (total 500)" in out
    # The kit's token is not the node's: its amounts stay in the smallest unit.
    assert "price 1000000000000004 of" in out
    code, out = _as(held, "stream", "show", held.sealed, "--key", "abcd")
    assert code == 1
    assert "64 hex digits" in out


def test_an_export_verifies_offline_and_a_tampered_one_fails_by_name(
    held: Held, tmp_path: Path
) -> None:
    path = tmp_path / "turbine.jsonl"
    code, out = _as(held, "stream", "export", held.sealed, "-o", str(path))
    assert code == 0, out
    assert "wrote 5 message(s)" in out
    verified = cli("stream", "verify", str(path), "--key", held.key.hex())
    assert verified.exit_code == 0, verified.output
    assert "verified 5 message(s)" in verified.output
    unopened = cli("stream", "verify", str(path))
    assert unopened.exit_code == 0
    assert "sealed payloads not opened" in unopened.output

    lines = path.read_bytes().splitlines(keepends=True)
    flipped = bytearray(lines[3])
    at = flipped.index(b"0x") + 200
    flipped[at : at + 1] = b"0" if flipped[at : at + 1] != b"0" else b"1"
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"".join([*lines[:3], bytes(flipped), *lines[4:]]))
    failed = cli("stream", "verify", str(tampered), "--key", held.key.hex())
    assert failed.exit_code == 1
    assert "NOT VERIFIED: bad_signature at message #2" in failed.output
    assert "2 of 5 message(s) verified before it" in failed.output
    as_json = cli("stream", "verify", str(tampered), "--json")
    assert as_json.exit_code == 1
    verdict = json.loads(as_json.stdout)
    assert (verdict["ok"], verdict["verified"]) == (False, 2)
    assert verdict["problem"]["code"] == "bad_signature"
    assert verdict["problem"]["position"] == 2

    reordered = tmp_path / "reordered.jsonl"
    reordered.write_bytes(b"".join([lines[0], lines[2], lines[1], *lines[3:]]))
    failed = cli("stream", "verify", str(reordered), "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["problem"]["code"] == "reordered"

    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[:-1]))
    failed = cli("stream", "verify", str(cut), "--key", held.key.hex())
    assert failed.exit_code == 1
    assert "truncated" in failed.output


def test_verify_fetches_a_url_and_refuses_what_is_not_a_stream(held: Held, tmp_path: Path) -> None:
    url = f"{held.node.url}/v1/streams/{held.public}.jsonl"
    fetched = cli("stream", "verify", url)
    assert fetched.exit_code == 0, fetched.output
    assert "verified 3 message(s)" in fetched.output
    # A QR code's URL: the file at its `src`, read with the key in its fragment.
    sealed_file = f"{held.node.url}/v1/streams/{held.sealed}.jsonl"
    code = StreamCode(bytes.fromhex(held.sealed[2:]), sealed_file, held.key)
    scanned = cli("stream", "verify", code.url(f"{held.node.url}/provenance/reader/"))
    assert scanned.exit_code == 0, scanned.output
    assert "verified 5 message(s)" in scanned.output
    assert "sealed payloads not opened" not in scanned.output
    # A code naming another stream than the file at its `src` holds.
    swapped = StreamCode(bytes.fromhex(held.public[2:]), sealed_file, held.key)
    failed = cli("stream", "verify", swapped.url(f"{held.node.url}/provenance/reader/"), "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["problem"]["code"] == "wrong_stream"
    not_a_code = cli("stream", "verify", f"{held.node.url}/provenance/reader/#m2mpay-stream=2")
    assert not_a_code.exit_code == 1
    assert "qr_format: stream code version" in not_a_code.output
    missing = cli("stream", "verify", f"{held.node.url}/v1/streams/{UNKNOWN}.jsonl")
    assert missing.exit_code == 1
    assert "404" in missing.output
    other = tmp_path / "other.jsonl"
    other.write_text('{"format": "something else"}\n')
    failed = cli("stream", "verify", str(other), "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["problem"]["code"] == "malformed"


def test_records_read_in_tokens_a_payment_in_the_token_last_priced() -> None:
    units = Units(TOKEN, "M2M", 18)
    assert record_text(PriceRecord(MeterUnit.WH, 3 * 10**14, TOKEN), units) == (
        "price 0.0003 M2M/Wh"
    )
    payment = PaymentRecord(bytes(32), AUTHOR.address, 10**17, 25 * 10**17)
    assert record_text(payment, units, TOKEN) == (
        f"payment 0.1 M2M from {AUTHOR.address} (total paid 2.5 M2M)"
    )
    assert record_text(payment, None) == (
        f"payment 100000000000000000 (smallest unit) from {AUTHOR.address} "
        "(total paid 2500000000000000000 (smallest unit))"
    )
