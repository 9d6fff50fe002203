"""Provenance streams as files: exported whole, imported only once verified, and a file
that is cut, edited or of another format named as such with nothing stored."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from m2mpay.errors import ProvenanceError
from m2mpay.provenance import (
    MemoryStreamStore,
    ProvenanceStream,
    StreamInvalid,
    StreamWriter,
    export_stream,
    import_stream,
    read_stream_file,
)
from m2mpay.provenance.stream_file import FILE_FORMAT
from tests.provenance.streams_kit import AUTHOR, Clock, StoreMaker, records


async def _exported(tmp_path: Path, count: int = 5) -> tuple[StreamWriter, Path]:
    store = MemoryStreamStore()
    await store.open()
    writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=Clock())
    await writer.append_many(records(count))
    path = tmp_path / "stream.jsonl"
    assert await export_stream(store, writer.stream_id, path) == count
    return writer, path


async def test_an_exported_stream_imports_into_another_store_as_it_was(
    tmp_path: Path, maker: StoreMaker
) -> None:
    writer, path = await _exported(tmp_path)
    lines = path.read_bytes().splitlines()
    header = orjson.loads(lines[0])
    assert header["format"] == FILE_FORMAT
    assert header["count"] == 5
    assert len(lines) == 6
    assert not (tmp_path / "stream.jsonl.tmp").exists()
    async with maker.open() as store:
        verified = await import_stream(store, path, writer.key())
        assert verified.records == records(5)
        kept = await ProvenanceStream.load(store, writer.stream_id)
        assert kept.verify(writer.key()).records == records(5)
        # Importing it again, or an export of what it already holds, adds nothing.
        await import_stream(store, path)
        assert len((await ProvenanceStream.load(store, writer.stream_id)).messages) == 5


async def test_a_longer_export_appends_only_what_the_store_lacks(
    tmp_path: Path, maker: StoreMaker
) -> None:
    source = MemoryStreamStore()
    await source.open()
    writer = await StreamWriter.create(source, AUTHOR, purpose="session", now_ms=Clock())
    await writer.append_many(records(3))
    early, late = tmp_path / "early.jsonl", tmp_path / "late.jsonl"
    await export_stream(source, writer.stream_id, early)
    await writer.append_many(records(4))
    await export_stream(source, writer.stream_id, late)
    async with maker.open() as store:
        await import_stream(store, early)
        await import_stream(store, late)
        await import_stream(store, early)  # an older export of the same stream
        kept = await ProvenanceStream.load(store, writer.stream_id)
        assert kept.verify(writer.key()).records == records(3) + records(4)


async def test_a_file_with_another_history_of_a_stream_is_refused(
    tmp_path: Path, maker: StoreMaker
) -> None:
    source = MemoryStreamStore()
    await source.open()
    writer = await StreamWriter.create(source, AUTHOR, purpose="session", now_ms=Clock())
    await writer.append_many(records(2))
    path = tmp_path / "one.jsonl"
    await export_stream(source, writer.stream_id, path)
    other_store = MemoryStreamStore()
    await other_store.open()
    await other_store.add_root(writer.root)
    fork = await StreamWriter.reopen(other_store, AUTHOR, writer.stream_id, now_ms=Clock(step=7))
    await fork.append_many(records(1))
    forked = tmp_path / "forked.jsonl"
    await export_stream(other_store, writer.stream_id, forked)
    async with maker.open() as store:
        await import_stream(store, path)
        with pytest.raises(ProvenanceError) as caught:
            await import_stream(store, forked)
        assert caught.value.code == "conflict"


def _joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _flip_hex(line: bytes, at: int) -> bytes:
    return line[:at] + (b"1" if line[at : at + 1] != b"1" else b"2") + line[at + 1 :]


EDITS: dict[str, tuple[Callable[[list[bytes]], bytes], str]] = {
    "last message dropped": (lambda ls: _joined(ls[:-1]), "truncated"),
    "cut mid-line": (lambda ls: _joined(ls[:-1]) + ls[-1][:40], "truncated"),
    "reordered": (lambda ls: _joined([ls[0], ls[2], ls[1], *ls[3:]]), "reordered"),
    "replayed": (lambda ls: _joined([*ls, ls[2]]), "duplicate"),
    "dropped": (lambda ls: _joined([ls[0], *ls[2:]]), "gap"),
    "a digit changed": (
        lambda ls: _joined([ls[0], _flip_hex(ls[1], 300), *ls[2:]]),
        "bad_signature",
    ),
    "another version": (  # 2 is the version with anchors: 3 is one no reader knows yet
        lambda ls: _joined([ls[0].replace(b'"version":1', b'"version":3'), *ls[1:]]),
        "unknown_version",
    ),
    "another format": (lambda ls: _joined([b'{"format":"csv"}', *ls[1:]]), "malformed"),
    "not a message": (lambda ls: _joined([ls[0], b"[1, 2]", *ls[2:]]), "malformed"),
    "odd hex": (lambda ls: _joined([ls[0], ls[1][:-2] + b'0"}', *ls[2:]]), "malformed"),
}


@pytest.mark.parametrize("edit", list(EDITS))
async def test_an_edited_file_is_named_and_nothing_of_it_is_stored(
    tmp_path: Path, maker: StoreMaker, edit: str
) -> None:
    writer, path = await _exported(tmp_path)
    change, code = EDITS[edit]
    path.write_bytes(change(path.read_bytes().split(b"\n")[:-1]))
    async with maker.open() as store:
        with pytest.raises(StreamInvalid) as caught:
            await import_stream(store, path, writer.key())
        assert caught.value.code == code, caught.value
        assert await store.roots() == []


def test_a_file_of_anything_else_is_refused() -> None:
    for data in (b"", b"\n", b"not json\n", b"[]\n", b'{"format":"m2mpay-provenance-stream"}\n'):
        with pytest.raises(StreamInvalid):
            read_stream_file(io.BytesIO(data))
    huge = b'{"format":"' + b"x" * 10_000_000 + b'"}\n'
    with pytest.raises(StreamInvalid, match="longer than"):
        read_stream_file(io.BytesIO(huge))
