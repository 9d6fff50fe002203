"""`m2mpay demo` against an Anvil node through --rpc-url: the same checks, on a JSON-RPC
chain, for the scenarios whose chain work differs there (a module of its own so that it
runs beside the embedded pass on another worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2mpay.chain.anvil import ANVIL_CHAIN_ID, AnvilNode
from tests.scenarios.demo_kit import run_demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


# The registry followed over RPC, a dispute a watcher defends, a token made, swapped and
# paid by plain transfer after confirmations, anchors checked against the chain. The
# other two (vehicle-to-grid, data-feed) ask the chain only what these do (a channel
# opened and closed), and the embedded pass runs them: the suite's time goes elsewhere.
ON_ANVIL = ("ev-charging", "ev-charging-malicious", "lamp", "wind-to-car")


def test_the_chain_heavy_scenarios_pass_on_anvil_through_rpc_url(tmp_path: Path) -> None:
    # An Anvil of its own: the scenarios count gas from the blocks mined while they run.
    with AnvilNode() as anvil:
        url = anvil.url
        report, _ = run_demo("--rpc-url", url, "--work-dir", str(tmp_path), scenarios=ON_ANVIL)
    assert report["chain"] == f"eip155:{ANVIL_CHAIN_ID}"
    assert report["ledger"] == f"JSON-RPC node at {url}"
