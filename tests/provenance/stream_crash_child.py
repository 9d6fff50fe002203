"""A writer for `test_stream_writer.py` to SIGKILL: it writes a restricted stream into a
SQLite stream store and prints each message's index once the append returned.

    python stream_crash_child.py PATH            # a new stream: prints "stream <id>" first
    python stream_crash_child.py PATH STREAM_ID  # reopens the stream and writes on
"""

from __future__ import annotations

import asyncio
import sys

from m2mpay.provenance import MeterRecord, MeterUnit, SqliteStreamStore, StreamWriter
from tests.provenance.streams_kit import AUTHOR


async def main(path: str, stream_hex: str | None) -> None:
    async with SqliteStreamStore(path) as store:
        if stream_hex is None:
            writer = await StreamWriter.create(store, AUTHOR, purpose="session")
            print(f"stream {writer.stream_id.hex()}", flush=True)
        else:
            writer = await StreamWriter.reopen(store, AUTHOR, bytes.fromhex(stream_hex))
        total = 0 if writer.head is None else writer.head.index + 1  # index i holds i + 1
        while True:
            total += 1
            message = await writer.append(MeterRecord(MeterUnit.WH, 1, total, 1000))
            print(message.index, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
