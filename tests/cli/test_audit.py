"""`m2mpay audit` end to end on stream files: the charger's sale exported, the turbine's
found beside it through the link, the report signed with the node key of --data-dir in
each format, and `m2mpay audit verify` accepting it and refusing it once changed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import orjson
import pytest
from eth_account import Account
from starlette.applications import Starlette

from m2mpay.asgi.server import AsgiServer
from m2mpay.crypto import PrivateKey
from m2mpay.crypto.keystore import KEYSTORE_DIR
from m2mpay.provenance import AccessMode, MemoryStreamStore
from m2mpay.provenance.audit_report import read_signed_report
from m2mpay.provenance.qr import StreamCode
from m2mpay.provenance.reader_app import reader_mount, stream_file_path
from m2mpay.provenance.stream_file import export_stream
from tests.cli.conftest import PASSPHRASE, cli
from tests.provenance.audit_kit import CHARGER, START_MS, write_chain


async def _export(folder: Path) -> Path:
    async with MemoryStreamStore() as store:
        chain = await write_chain(store)
        for writer in (chain.upstream, chain.downstream):
            await export_stream(
                store, writer.stream_id, folder / f"0x{writer.stream_id.hex()}.jsonl"
            )
    return folder / f"0x{chain.downstream.stream_id.hex()}.jsonl"


@pytest.fixture
def sale(tmp_path: Path) -> Path:
    folder = tmp_path / "streams"
    folder.mkdir()
    return asyncio.run(_export(folder))


def _light_key(data_dir: Path, key: PrivateKey = CHARGER) -> str:
    """A node key in a keystore whose scrypt is cheap: `key new`'s costs a second a use."""
    folder = data_dir / KEYSTORE_DIR
    folder.mkdir(parents=True)
    encrypted = Account.encrypt(key.secret, PASSPHRASE, iterations=2**10)
    (folder / f"{key.address.checksum}.json").write_text(json.dumps(encrypted))
    return key.address.checksum


def _audit(data_dir: Path, *args: str) -> tuple[int, str, str]:
    done = cli("audit", *args, "--data-dir", str(data_dir), M2MPAY_PASSPHRASE=PASSPHRASE)
    return done.exit_code, done.stdout, done.stderr


def test_a_report_from_files_in_each_format_verifies(sale: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    address = _light_key(data_dir)
    html = tmp_path / "report.html"
    code, out, said = _audit(
        data_dir, "--stream", str(sale), "--out", str(html), "--from", str(START_MS),
        "--decimals", "18", "--symbol", "M2M",
    )  # fmt: skip
    assert code == 0, said
    assert out.strip() == str(html)
    assert "following the link upstream" in said
    assert "checked offline" in said
    assert "2 hops, 2026-09-21 14:00:00 UTC" in said
    assert "0.00002 M2M" in html.read_text()  # the charger's commission
    verified = cli("audit", "verify", str(html), "--issuer", address)
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith("valid: 2 hops")

    pdf = tmp_path / "report.pdf"
    assert _audit(data_dir, "--stream", str(sale), "--out", str(pdf))[0] == 0
    assert pdf.read_bytes().startswith(b"%PDF-")

    as_json = tmp_path / "report.out"
    code, _, said = _audit(
        data_dir, "--stream", str(sale), "--out", str(as_json), "--format", "json",
        "--interval", "5m", "--credit-window", "3",
    )  # fmt: skip
    assert code == 0, said
    report = read_signed_report(as_json.read_bytes()).report
    assert report.interval_ms == 300_000
    assert report.credit_window == 3
    assert str(report.issuer) == address


def test_verify_refuses_a_changed_report_and_another_issuer(sale: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    _light_key(data_dir)
    path = tmp_path / "report.json"
    assert _audit(data_dir, "--stream", str(sale), "--out", str(path))[0] == 0
    document = orjson.loads(path.read_bytes())
    document["report"]["hops"][1]["units"] += 1
    path.write_bytes(orjson.dumps(document))
    changed = cli("audit", "verify", str(path))
    assert changed.exit_code == 1
    assert "not signed by its issuer" in changed.output
    document["report"]["hops"][1]["units"] -= 1
    path.write_bytes(orjson.dumps(document))
    assert cli("audit", "verify", str(path)).exit_code == 0
    other = cli("audit", "verify", str(path), "--issuer", "0x" + "11" * 20)
    assert other.exit_code == 1
    assert "not 0x1111" in other.output


def test_clear_errors(sale: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    no_key = _audit(data_dir, "--stream", str(sale), "--out", str(tmp_path / "r.html"))
    assert no_key[0] == 2
    assert "no node key" in no_key[2]
    _light_key(data_dir)
    for args, said in (
        (["--stream", str(sale), "--out", str(tmp_path / "r.txt")], ".json, .html or .pdf"),
        (["--stream", str(tmp_path / "none.jsonl"), "--out", "r.json"], "no such file"),
        (["--stream", str(sale), "--out", "r.json", "--interval", "soon"], "--interval"),
        (["--stream", str(sale), "--out", "r.json", "--from", "yesterday"], "--from"),
        (["--out", "r.json"], "give --stream and --out"),
    ):
        code, _, err = _audit(data_dir, *args)
        assert code == 2, (args, err)
        assert said in err, (args, err)
    not_a_stream = tmp_path / "not.jsonl"
    not_a_stream.write_text("hello\n")
    code, _, err = _audit(
        data_dir, "--stream", str(not_a_stream), "--out", str(tmp_path / "r.json")
    )
    assert code == 1
    assert "not.jsonl" in err
    assert "malformed" in err or "not JSON" in err
    assert not (tmp_path / "r.json").exists()


async def test_a_stream_code_url_is_fetched_with_its_key_and_upstream_beside_it(
    tmp_path: Path,
) -> None:
    """The scanned QR code's URL: the file fetched from a node's `reader_mount`, the
    restricted stream opened with the key in the fragment, the turbine's stream found
    under the same URL and opened with --key; run as people run it (its own process)."""
    data_dir = tmp_path / "auditor"
    _light_key(data_dir, PrivateKey(bytes(31) + b"\x33"))  # a node that wrote neither stream
    async with MemoryStreamStore() as store:
        chain = await write_chain(store, access=AccessMode.RESTRICTED)
        server = AsgiServer(Starlette(routes=[reader_mount(store)]), name="streams")
        base = await server.start()
        try:
            src = base + "/provenance" + stream_file_path(chain.downstream.stream_id)
            code = StreamCode(chain.downstream.stream_id, src, chain.downstream.key())
            upstream = f"0x{chain.upstream.stream_id.hex()}=0x{chain.upstream.key().hex()}"
            out = tmp_path / "report.json"
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "m2mpay", "audit",
                "--stream", code.url(base + "/provenance/reader/"), "--key", upstream,
                "--out", str(out), "--data-dir", str(data_dir),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "M2MPAY_PASSPHRASE": PASSPHRASE},
            )  # fmt: skip
            stdout, stderr = await process.communicate()
        finally:
            await server.stop()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().strip() == str(out)
    assert "following the link upstream to http" in stderr.decode()
    assert f"from {src}" in stderr.decode()
    assert code.key is not None
    assert code.key.hex() not in stderr.decode()  # the fragment's key is never echoed
    report = read_signed_report(out.read_bytes()).report
    assert [h.units for h in report.hops] == [100, 100]
    assert all(h.verified for h in report.hops)
