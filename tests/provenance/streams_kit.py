"""What the provenance stream tests share: fixed keys, records, a clock, stores of every
kind that can be "restarted", a way to make the messages a cheat would make, and the
one way they run a Node program on JSON (`in_node`: the web reader's code, WebCrypto)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from m2mpay.crypto import Address, PrivateKey
from m2mpay.provenance import (
    MemoryStreamDisk,
    MemoryStreamStore,
    MeterRecord,
    MeterUnit,
    NoteRecord,
    PaymentRecord,
    PostgresStreamStore,
    PriceRecord,
    SqliteStreamStore,
    StreamMessage,
    StreamRecord,
    StreamStore,
)
from m2mpay.provenance.stream_crypto import SEALING_OVERHEAD, seal_payload
from m2mpay.provenance.stream_format import MessageKind, make_message, message_header

__all__ = [
    "AUTHOR",
    "OTHER",
    "TOKEN",
    "Clock",
    "StoreMaker",
    "forge",
    "in_node",
    "records",
]

AUTHOR: Final = PrivateKey(bytes(31) + b"\x07")
OTHER: Final = PrivateKey(bytes(31) + b"\x08")
TOKEN: Final = Address(bytes([3]) * 20)
CHANNEL: Final = bytes([9]) * 32
NODE: Final = shutil.which("node")  # `make test` brings Node for the npm packages: never skipped


def in_node(program: list[str], given: Any, *, timeout: float = 60) -> Any:
    """What a Node program (its arguments after `node`) prints as JSON, given `given` as
    JSON on its standard input; its standard error is the failure's message."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, *program],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def records(count: int) -> list[StreamRecord]:
    """`count` records of every kind but the session's and the receipt's, in turn."""
    made: list[StreamRecord] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            made.append(PriceRecord(MeterUnit.WH, 10**15 + i, TOKEN))
        elif kind == 1:
            made.append(MeterRecord(MeterUnit.WH, 250 + i, 250 * (i + 1), 1000))
        elif kind == 2:
            made.append(PaymentRecord(CHANNEL, OTHER.address, 10**17 + i, 10**18 * (i + 1)))
        else:
            made.append(NoteRecord(f'note {i}: ünïcode and "quotes"'))
    return made


class Clock:
    """Milliseconds that move only when told (or by `step` on every reading)."""

    def __init__(self, start_ms: int = 1_790_000_000_000, step: int = 1000) -> None:
        self.now = start_ms
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def forge(
    signer: PrivateKey,
    stream_id: bytes,
    index: int,
    prev: bytes,
    *,
    timestamp_ms: int = 1_790_000_100_000,
    epoch: int = 0,
    kind: MessageKind = MessageKind.RECORD,
    payload: bytes = b'{"t":"prov.note","text":"forged"}',
    key: bytes | None = None,
    signer_field: Address | None = None,
) -> StreamMessage:
    """A message signed by `signer` with whatever fields a test wants."""
    size = len(payload) + (SEALING_OVERHEAD if key else 0)
    header = message_header(
        stream_id, index, prev, timestamp_ms, epoch, kind, signer_field or signer.address, size
    )
    return make_message(signer, header, seal_payload(key, header, payload) if key else payload)


@dataclass
class StoreMaker:
    """Stores of one kind on one location: `open()` again is a restart."""

    kind: str
    path: Path
    disk: MemoryStreamDisk
    url: str = ""  # PostgreSQL's, with a schema of the test's own

    def make(self, cached_heads: int = 10_000) -> StreamStore:
        if self.kind == "sqlite":
            return SqliteStreamStore(self.path, cached_heads=cached_heads)
        if self.kind == "postgres":
            return PostgresStreamStore(self.url, cached_heads=cached_heads)
        return MemoryStreamStore(self.disk, cached_heads=cached_heads)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[StreamStore]:
        async with self.make() as store:
            yield store


def store_makers(tmp_path: Path, url: str = "") -> Callable[[str], StoreMaker]:
    """Makers of fresh locations; `url` is PostgreSQL's (one location: one maker each)."""
    counter = itertools.count()

    def make(kind: str) -> StoreMaker:
        path = tmp_path / f"streams-{next(counter)}.sqlite3"
        return StoreMaker(kind, path, MemoryStreamDisk(), url)

    return make
