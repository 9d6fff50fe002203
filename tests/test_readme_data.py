"""The README's "Paid live data" section, run as written: a node with its own Mosquitto
sells a plug's feed, the plug runs with the credentials it was given, a reader without
an account reads the average, another node buys minutes of the live topic, and
`mosquitto_sub` with the reader's own credentials reads live messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from m2mpay.bench.daemons import NodeProcess
from tests.readme_blocks import Terminal, blocks_named, free_port, terminal


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Terminal]:
    made = terminal(tmp_path, "data", {"8402": str(free_port())})
    try:
        yield made
    finally:
        made.stop()


@pytest.mark.slow
def test_the_paid_data_section(shell: Terminal, tmp_path: Path) -> None:
    (block,) = blocks_named("paid-data")
    buyer = NodeProcess(
        tmp_path / "buyer", "--chain-dir", str(tmp_path / "home" / ".m2mpay"), "--no-mqtt"
    )

    def buyer_ready() -> dict[str, str]:
        """The buyer's node, started once the README's node hosts the chain it joins."""
        if not buyer.ready:
            buyer.start()
        return buyer.ready

    shell.given |= {
        "buyer-url": lambda: buyer_ready()["url"],
        "buyer-token": lambda: buyer_ready()["api_token"],
    }
    try:
        shell.run_block(block)
        (feed,) = shell.m2mpay_json("data", "feeds")["feeds"]
        (sold,) = shell.m2mpay_json("data", "grants")["grants"]
    finally:
        buyer.stop()
    said = shell.output()
    assert feed["feed_id"].startswith(shell.printed("feed"))
    assert (sold["role"], sold["username"], sold["phase"]) == ("seller", "kitchen-reader", "live")
    assert sold["seconds"] == 300
    # The free average, then three live readings on the paid topic.
    average = next(line for line in said.splitlines() if line.startswith('{"watts"'))
    assert json.loads(average)["window_s"] == 60
    live = [line for line in said.splitlines() if line.startswith("m2m/plug-kitchen/live ")]
    assert len(live) == 3
    assert all(set(json.loads(line.split(" ", 1)[1])) == {"watts", "at_ms"} for line in live)
    password = (tmp_path / "clone" / "reader.pw").read_text().strip()
    assert password not in said  # the reader's own, from its file: never printed
