"""A daemon whose node store is PostgreSQL keeps its provenance streams there too: a
stream written before a restart is served whole after it, and no `streams.db` is made."""

from __future__ import annotations

import io
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

from m2mpay.crypto import PrivateKey
from m2mpay.daemon import Daemon, DaemonConfig
from m2mpay.daemon.access import MqttConfig
from m2mpay.provenance import AccessMode, PostgresStreamStore, ProvenanceStream, StreamWriter
from m2mpay.provenance.stream_file import read_stream_file
from tests.provenance.streams_kit import Clock, records
from tests.store.conftest import postgres_schema_url, postgres_url  # noqa: F401 (fixtures)

KEY = PrivateKey(bytes(31) + b"\x2a")


async def test_a_daemon_on_postgresql_keeps_its_streams_there_across_a_restart(
    tmp_path: Path,
    postgres_schema_url: str,  # noqa: F811
) -> None:
    config = DaemonConfig(
        data_dir=tmp_path / "node",
        port=0,
        store=postgres_schema_url,
        mqtt=MqttConfig(enabled=False),
    )
    async with Daemon(config, KEY) as daemon:
        assert isinstance(daemon.streams, PostgresStreamStore)
        writer = await StreamWriter.create(
            daemon.streams, KEY, purpose="a sale", access=AccessMode.PUBLIC, now_ms=Clock()
        )
        written = await writer.append_many(records(5))
    assert not (config.data_dir / "streams.db").exists()
    # In the node store's schema, beside its journal.
    conn = await asyncpg.connect(postgres_schema_url)
    try:
        kept = await conn.fetchval("SELECT count(*) FROM m2mpay_stream_message")
        journal = await conn.fetchval("SELECT to_regclass('m2mpay_wal') IS NOT NULL")
    finally:
        await conn.close()
    assert kept == len(written)
    assert journal is True

    async with Daemon(config, KEY) as daemon:  # a restart
        assert daemon.streams is not None
        stream = await ProvenanceStream.load(daemon.streams, writer.stream_id)
        verified = stream.verify()
        assert verified.ok, verified.problem
        assert verified.records == records(5)
        async with httpx.AsyncClient(base_url=daemon.url) as http:
            answer = await http.get(f"/v1/streams/0x{writer.stream_id.hex()}.jsonl")
        assert answer.status_code == 200, answer.text
        served = read_stream_file(io.BytesIO(answer.content))
        assert served.messages == tuple(m.raw for m in written)
    assert not (config.data_dir / "streams.db").exists()
