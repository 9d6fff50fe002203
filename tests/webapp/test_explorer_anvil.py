"""The same explorer pages against node processes on Anvil (`--rpc-url`, the session's
Anvil) rather than the embedded chain: after a channel is opened, paid and closed, search
lands on the channel, its history runs from open to settle, and its open transaction
shows the hub's call and events decoded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from m2mpay.bench.daemons import NodeProcess
from m2mpay.chain.anvil import AnvilNode
from tests.api.conftest import paid_and_closed_channel
from tests.webapp.app_kit import AppPage, axe_check, logged_in, screenshot, shown


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, anvil_node: AnvilNode
) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    root = tmp_path_factory.mktemp("explorer-anvil")
    chain = ("--no-mqtt", "--rpc-url", anvil_node.url, "--chain-dir", str(root / "chain"))
    (root / "chain").mkdir()
    node = NodeProcess(root / "node", *chain)  # deploys the contracts on Anvil
    node.start()
    peer = NodeProcess(root / "peer", *chain)
    try:
        peer.start()
        yield node, peer
    finally:
        peer.stop()
        node.stop()


@pytest.fixture(scope="module")
def node(nodes: tuple[NodeProcess, NodeProcess]) -> NodeProcess:
    return nodes[0]


@pytest.fixture(scope="module")
def story(nodes: tuple[NodeProcess, NodeProcess]) -> dict[str, Any]:
    node, peer = nodes
    with httpx.Client(
        base_url=node.url,
        headers={"Authorization": f"Bearer {node.ready['api_token']}"},
        timeout=60,
    ) as api:
        channel = paid_and_closed_channel(api, peer)
        history = api.get(f"/v1/explorer/channels/{channel}").json()
    return {"channel": channel, "history": history, "peer": peer.ready["address"]}


@pytest.mark.slow  # two node processes deploying and transacting on Anvil: ~20 s
async def test_the_explorer_on_anvil(app: AppPage, story: dict[str, Any]) -> None:
    assert app.node.ready["chain"] == "eip155:31337"
    await logged_in(app, "/explorer")
    box = app.page.get_by_role("searchbox", name="Search the chain")
    await box.fill(story["channel"])
    await box.press("Enter")
    await shown(app, f"/explorer/channel/{story['channel']}")
    rows = app.page.locator("table:has(caption:text('Its history on chain')) tbody tr")
    names = [step["event"] for step in story["history"]["events"]]
    assert names[0] == "ChannelOpened"
    assert names[-1] == "ChannelSettled"
    await expect(rows).to_have_count(len(names))
    await expect(rows.last.locator("td").first).to_contain_text("ChannelSettled")

    await rows.first.locator("td").nth(3).get_by_role("link").click()
    open_tx = story["history"]["events"][0]["tx_hash"]
    await shown(app, f"/explorer/tx/{open_tx}")
    await expect(app.page.get_by_test_id("call")).to_contain_text("ChannelHub.open")
    events = app.page.get_by_test_id("event")
    await expect(events.first).to_contain_text("ChannelOpened from ChannelHub")
    await expect(events.filter(has_text="Transfer from Token")).to_have_count(1)
    await expect(app.page.get_by_role("link", name=story["peer"])).not_to_have_count(0)
    await axe_check(app.page)
    await screenshot(app.page, "webapp-explorer-anvil-transaction")
    assert app.elsewhere == []
