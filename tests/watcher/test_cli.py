"""`m2mpay watcher serve` with its defaults: the hub from the data dir's deployments.json,
the store in the data dir, the last dev account paying gas; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from m2mpay.bench.watcher import WatcherProcess
from m2mpay.chain import dev_keys
from m2mpay.cli import app
from m2mpay.watcher_client import WatcherClient


def test_help_lists_the_watcher_commands() -> None:
    result = CliRunner().invoke(app, ["watcher", "--help"])
    assert result.exit_code == 0, result.output
    assert "serve" in result.stdout
    assert "status" in result.stdout


def test_serve_with_data_dir_defaults(tmp_path: Path) -> None:
    deployed = CliRunner().invoke(app, ["ledger", "deploy", "--data-dir", str(tmp_path), "--json"])
    assert deployed.exit_code == 0, deployed.output
    hub = json.loads(deployed.stdout)["hub"]

    async def serve() -> None:
        # No chain is hosted here: the watcher process hosts the data dir's chain itself.
        process = WatcherProcess(hub=None, store=None, data_dir=tmp_path)
        ready = await process.start()
        try:
            assert ready["hub"] == hub
            assert ready["chain"] == "eip155:1337"
            assert ready["store"] == str(tmp_path / "watcher.sqlite3")
            assert ready["address"] == str(dev_keys()[-1].address)
            async with WatcherClient(ready["url"]) as client:
                info = await client.info()
            assert (info.hub.checksum, info.channels) == (hub, 0)
        finally:
            assert await process.stop() == 0
        assert (tmp_path / "watcher.sqlite3").exists()

    asyncio.run(serve())  # the deploy above ran its own event loop too: this test is sync
