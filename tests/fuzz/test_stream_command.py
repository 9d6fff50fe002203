"""`m2mpay stream verify --json` against hostile files: whatever the bytes (a valid
file with bytes flipped, lines dropped, swapped or cut, or noise), it answers one JSON
verdict and exits 0 only when that verdict is ok, never with a traceback, and never
calls verified a file whose messages are not the author's."""

from __future__ import annotations

import asyncio
import json
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.provenance import AccessMode, MemoryStreamStore, ProvenanceStream, StreamWriter
from m2mpay.provenance.stream_file import stream_file_lines
from tests.cli.conftest import cli
from tests.fuzz.hostile import FUZZ
from tests.provenance.streams_kit import AUTHOR, Clock, records

pytestmark = pytest.mark.timeout(120)


@cache
def _file() -> tuple[str, list[bytes]]:
    """A restricted stream's key (hex) and its file's lines."""

    async def write() -> tuple[str, list[bytes]]:
        async with MemoryStreamStore() as store:
            writer = await StreamWriter.create(
                store, AUTHOR, purpose="fuzz", access=AccessMode.RESTRICTED, now_ms=Clock()
            )
            await writer.append_many(records(4))
            stream = await ProvenanceStream.load(store, writer.stream_id)
            return writer.key().hex(), list(stream_file_lines(stream.root, list(stream.messages)))

    return asyncio.run(write())


def _verdict(data: bytes) -> tuple[int, dict[str, object]]:
    key, _ = _file()
    with TemporaryDirectory() as where:
        path = Path(where) / "stream.jsonl"
        path.write_bytes(data)
        result = cli("stream", "verify", str(path), "--key", key, "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    verdict: dict[str, object] = json.loads(result.stdout)
    assert verdict["ok"] is (result.exit_code == 0)
    return result.exit_code, verdict


def test_the_file_as_written_verifies() -> None:
    _, lines = _file()
    code, verdict = _verdict(b"".join(lines))
    assert code == 0
    assert verdict["verified"] == 4


# Each example runs the whole command (about 80 ms: the signatures of every message are
# recovered): fewer examples than the decoders' fuzzing, over the same five kinds of change.
@given(data=st.data())
@settings(FUZZ, max_examples=60)
def test_a_changed_file_gets_a_verdict_and_a_changed_message_never_verifies(
    data: st.DataObject,
) -> None:
    _, lines = _file()
    body = bytearray(b"".join(lines))
    change = data.draw(st.sampled_from(["flip", "drop", "swap", "cut", "noise"]))
    if change == "flip":
        # A hex digit of a message line changed for another: its bytes are not the signed ones.
        line = data.draw(st.integers(1, len(lines) - 1))
        start = sum(len(x) for x in lines[:line]) + len(b'{"message":"0x')
        at = data.draw(st.integers(start, start + len(lines[line]) - len(b'{"message":"0x"}\n')))
        body[at] = ord("0") if body[at] != ord("0") else ord("1")
    elif change == "drop":
        dropped = data.draw(st.integers(1, len(lines) - 1))
        body = bytearray(b"".join(x for i, x in enumerate(lines) if i != dropped))
    elif change == "swap":
        a, b = sorted(data.draw(st.lists(st.integers(1, len(lines) - 1), min_size=2, max_size=2)))
        swapped = list(lines)
        swapped[a], swapped[b] = swapped[b], swapped[a]
        body = bytearray(b"".join(swapped))
    elif change == "cut":
        body = body[: data.draw(st.integers(0, len(body) - 1))]
    else:
        body = bytearray(data.draw(st.binary(max_size=400)))
    code, verdict = _verdict(bytes(body))
    # Every change of a signed byte, of the order or of the count is caught.
    assert code == 1 or bytes(body) == b"".join(lines), (change, verdict)
