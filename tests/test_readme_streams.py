"""The README's "Provenance streams" section, run as written: a node serving the stream
its data dir holds (a turbine's, restricted, written there before the node starts) lists
it, shows it sealed and then read with its key, exports it, and `m2mpay stream verify`
checks the file offline and at its URL; the owner's QR code is an SVG."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from m2mpay.provenance import SqliteStreamStore, StreamWriter
from tests.provenance.streams_kit import AUTHOR, Clock, records
from tests.readme_blocks import Terminal, blocks_named, free_port, terminal


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Terminal]:
    made = terminal(tmp_path, "streams", {"8402": str(free_port())})
    try:
        yield made
    finally:
        made.stop()


async def _turbine(data_dir: Path) -> bytes:
    async with SqliteStreamStore(data_dir / "streams.db") as store:
        writer = await StreamWriter.create(store, AUTHOR, purpose="turbine", now_ms=Clock())
        await writer.append_many(records(7))
        return writer.key()


@pytest.mark.slow
def test_the_provenance_streams_section(shell: Terminal, tmp_path: Path) -> None:
    (block,) = blocks_named("provenance-streams")
    data_dir = tmp_path / "home" / ".m2mpay"
    data_dir.mkdir(parents=True, mode=0o700)
    key = asyncio.run(_turbine(data_dir))
    shell.given["key"] = key.hex
    shell.run_block(block)
    said = shell.output()
    assert "7 message(s) sealed: give --key" in said
    assert "meter +" in said  # read with the key
    assert said.count("verified 7 message(s)") >= 4  # show twice, the file, the URL
    assert "sealed payloads not opened" in said  # the URL, verified without the key
    assert "NOT VERIFIED" not in said
    assert (tmp_path / "clone" / "turbine.jsonl").is_file()
    assert (tmp_path / "clone" / "qr.svg").read_bytes().startswith(b"<?xml")
