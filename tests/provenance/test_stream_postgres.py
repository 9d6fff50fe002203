"""What only `PostgresStreamStore` has to show (the shared suite runs on it too): a commit
split past the 1 GB parameter bound is still all or nothing, 64-bit integers and bytes
come back whole, and tables of another format are refused."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest

from m2mpay.errors import StoreError
from m2mpay.provenance import (
    AccessMode,
    PostgresStreamStore,
    StreamMessage,
    StreamRoot,
    stream_postgres,
)
from m2mpay.provenance.records import StreamHead
from m2mpay.provenance.stream_format import make_root
from tests.provenance.streams_kit import AUTHOR, forge

BIG = (1 << 63) - 1  # the largest bigint, and the largest index a store takes


def _stream(count: int) -> tuple[StreamRoot, list[StreamMessage]]:
    root = make_root(AUTHOR, AccessMode.PUBLIC, "test", 1, bytes(32))
    chain: list[StreamMessage] = []
    for index in range(count):
        prev = chain[-1].hash if chain else root.stream_id
        chain.append(forge(AUTHOR, root.stream_id, index, prev))
    return root, chain


async def test_a_commit_split_in_chunks_is_kept_whole_or_not_at_all(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_postgres, "_CHUNK_BYTES", 1000)  # 64 MiB in production
    root, chain = _stream(30)
    assert len(stream_postgres._chunks(chain[20:])) > 1  # the commit that fails is split
    async with PostgresStreamStore(postgres_schema_url) as store:
        await store.add_root(root)
        await store.append(chain[:20])
        assert await store.messages(root.stream_id) == chain[:20]
        # A row the checks cannot know of (a second writer's): the last chunk fails.
        conn = await asyncpg.connect(postgres_schema_url)
        try:
            await conn.execute(
                "INSERT INTO m2mpay_stream_message (stream, idx, data) VALUES ($1, $2, $3)",
                root.stream_id,
                29,
                chain[29].raw,
            )
        finally:
            await conn.close()
        with pytest.raises(StoreError, match="a commit failed"):
            await store.append(chain[20:])
    async with PostgresStreamStore(postgres_schema_url) as store:
        # Nothing of the failed commit's first chunks was kept.
        assert await store.messages(root.stream_id) == [*chain[:20], chain[29]]


async def test_64_bit_numbers_and_bytes_come_back_whole(postgres_schema_url: str) -> None:
    root, chain = _stream(2)
    head = StreamHead(root.stream_id, 1, chain[1].hash)
    async with PostgresStreamStore(postgres_schema_url) as store:
        await store.add_root(root)
        await store.append(chain)
        batch = await store.record_batch(bytes(32), [head], BIG, BIG)
        tx_hash = b"\x00\xff" * 16
        await store.mark_batch_anchored(batch.id, tx_hash, BIG, BIG)
    async with PostgresStreamStore(postgres_schema_url) as store:
        kept = await store.stream_batch(batch.id)
        assert kept is not None
        assert (kept.root, kept.created_ms, kept.from_block) == (bytes(32), BIG, BIG)
        assert (kept.tx_hash, kept.block_number, kept.gas_used) == (tx_hash, BIG, BIG)
        assert kept.heads == (head,)
        assert await store.root(root.stream_id) == root


async def test_tables_of_another_format_are_refused(postgres_schema_url: str) -> None:
    async with PostgresStreamStore(postgres_schema_url):
        pass  # creates the tables
    conn = await asyncpg.connect(postgres_schema_url)
    try:
        await conn.execute("UPDATE m2mpay_stream_format SET format = 3")
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="format 3"):
        await PostgresStreamStore(postgres_schema_url).open()
