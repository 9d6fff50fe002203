"""A daemon anchors the heads of the provenance streams it keeps on its own: a stream
written into its store is, within its anchoring interval, served as a file whose anchor
proofs hold against the chain, submitted by the node's own key."""

from __future__ import annotations

import io
from pathlib import Path

import httpx

from m2mpay.chain.devkeys import dev_keys
from m2mpay.daemon import Daemon, DaemonConfig
from m2mpay.daemon.access import MqttConfig
from m2mpay.node import LedgerAccess
from m2mpay.provenance import AccessMode, StreamWriter
from m2mpay.provenance.anchor_proof import verify_anchor
from m2mpay.provenance.stream_file import StreamFile, read_stream_file
from tests.provenance.streams_kit import Clock, records
from tests.waiting import eventually_async

KEY = dev_keys()[9]  # funded on the embedded chain: the anchoring pays gas


async def test_a_daemon_anchors_the_streams_it_keeps(tmp_path: Path) -> None:
    config = DaemonConfig(
        data_dir=tmp_path / "node",
        port=0,
        mqtt=MqttConfig(enabled=False),
        telemetry_interval_s=0.2,  # anchor often, for the test
    )
    async with Daemon(config, KEY) as daemon:
        assert daemon.streams is not None
        writer = await StreamWriter.create(
            daemon.streams, KEY, purpose="a sale", access=AccessMode.PUBLIC, now_ms=Clock()
        )
        written = await writer.append_many(records(4))
        url = f"/v1/streams/0x{writer.stream_id.hex()}.jsonl"
        served: list[StreamFile] = []

        async def anchored() -> bool:
            async with httpx.AsyncClient(base_url=daemon.url) as http:
                answer = await http.get(url)
            assert answer.status_code == 200, answer.text
            served[:] = [read_stream_file(io.BytesIO(answer.content))]
            return bool(served[0].anchors)

        await eventually_async(anchored, timeout=30)
        [file] = served
        assert file.messages == tuple(m.raw for m in written)
        chain = daemon.node.chain
        assert isinstance(chain, LedgerAccess)
        ledger = chain.ledger
        for proof in file.anchors:
            check = await verify_anchor(proof, ledger, submitters=frozenset({KEY.address}))
            assert check.ok, (check.problem, check.detail)
