"""The disputes page with a real dispute: a watcher process and two nodes on one embedded
chain, Bob's node feeding the watcher. Alice pays Bob in a channel, both go offline, and
Alice's owner closes on chain with a stale state (nobody paid: the one step no honest
interface takes, so the test sends it to the hub with her key). The watcher challenges with
Bob's proof; back online, Bob's node shows the challenge on its disputes page, linked to the
channel whose history shows the close and the challenge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from m2mpay.bench.daemons import NodeProcess
from m2mpay.chain.events import ChannelOpened
from m2mpay.chain.hub import ChannelHub, OnchainChannel
from m2mpay.chain.shared import ledger_session
from m2mpay.crypto import Address
from m2mpay.crypto.keystore import find_keystore, load_keystore
from m2mpay.errors import M2MPayError
from m2mpay.watcher_client import WatcherClient
from tests.api.conftest import funded_channel
from tests.cli.conftest import cli
from tests.waiting import eventually_async
from tests.webapp.app_kit import AppPage, axe_check, logged_in, screenshot, shown

PASSPHRASE = "correct horse"  # NodeProcess's default
PAID = 1234


async def _close_stale(chain_dir: Any, alice: NodeProcess, channel_id: str) -> None:
    """Alice's owner, with her node's key, closes claiming nobody paid anybody."""
    path = find_keystore(alice.data_dir / "keystore")
    assert path is not None
    key = load_keystore(path, PASSPHRASE)
    wanted = bytes.fromhex(channel_id.removeprefix("0x"))
    async with ledger_session(data_dir=chain_dir) as ledger:
        hub = ChannelHub(ledger, Address(str(alice.ready["hub"])))
        (o,) = [
            e
            for e in await hub.events(0)
            if isinstance(e, ChannelOpened) and e.channel_id == wanted
        ]
        channel = OnchainChannel(o.a, o.b, o.token, o.challenge_period, o.nonce, o.deposit_a)
        await hub.close(key, channel, 0, 0, None)


def _alice_pays_bob(alice: NodeProcess, bob: NodeProcess) -> str:
    """A channel from Alice to Bob, and a payment in it; its id."""
    with httpx.Client(
        base_url=alice.url,
        headers={"Authorization": f"Bearer {alice.ready['api_token']}"},
        timeout=60,
    ) as api:
        channel = funded_channel(api, bob, deposit=1_000_000)
        paid = api.post(f"/v1/channels/{channel}/payments", json={"amount": str(PAID)})
        assert paid.status_code == 201, paid.text
    return channel


@pytest.fixture(scope="module")
async def story(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("disputes")
    chain_dir = root / "chain"
    deployed = await asyncio.to_thread(cli, "ledger", "deploy", "--data-dir", str(chain_dir))
    assert deployed.exit_code == 0, deployed.output
    watcher = NodeProcess(chain_dir, command=("watcher", "serve"), log_name="watcher")
    on_chain = ("--no-mqtt", "--chain-dir", str(chain_dir))
    started: list[NodeProcess] = []
    try:
        watcher.start()  # it hosts the embedded chain
        started.append(watcher)
        bob = NodeProcess(root / "bob", *on_chain, "--watcher", watcher.url)
        alice = NodeProcess(root / "alice", *on_chain)
        for process in (bob, alice):
            process.start()
            started.append(process)
        channel = await asyncio.to_thread(_alice_pays_bob, alice, bob)
        async with WatcherClient(watcher.url) as tower:

            async def holds_bobs_proof() -> bool:
                try:
                    held = await tower.channel(channel)
                except M2MPayError:  # not registered yet: ask again
                    return False
                return any(int(p["held_transferred"] or 0) >= PAID for p in held["parties"])

            await eventually_async(holds_bobs_proof, timeout=60)
            bob.stop()  # both offline: only the watcher can answer the stale close
            alice.stop()
            await _close_stale(chain_dir, alice, channel)

            async def challenged() -> bool:
                return any(
                    d["kind"] == "challenge" and d["status"] == "mined"
                    for d in await tower.disputes()
                )

            await eventually_async(challenged, timeout=60)
        token = bob.ready["api_token"]  # shown on the first start only
        bob.start()  # back: its page reads the watcher's view
        bob.ready["api_token"] = token
        yield {"bob": bob, "channel": channel, "watcher": watcher.url}
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="module")
def node(story: dict[str, Any]) -> NodeProcess:
    bob: NodeProcess = story["bob"]
    return bob


@pytest.mark.slow  # a watcher and two node processes, a dispute on chain: ~60 s
async def test_the_watcher_s_challenge_on_the_disputes_page(
    app: AppPage, story: dict[str, Any]
) -> None:
    await logged_in(app, "/disputes")
    page = app.page
    await expect(page.get_by_test_id("watcher")).to_contain_text(f"{story['watcher']}: reachable")
    rows = page.locator("table:has(caption:text('Challenges and settlements')) tbody tr")
    challenge = rows.filter(has_text="challenge")
    await expect(challenge).to_have_count(1)
    await expect(challenge).to_contain_text("mined")
    await expect(challenge.locator("td").nth(6)).to_have_text(str(PAID))  # Bob's proof
    await axe_check(page)
    await screenshot(page, "webapp-disputes")

    await challenge.get_by_role("link", name=story["channel"][:8], exact=False).first.click()
    await shown(app, f"/explorer/channel/{story['channel']}")
    history = page.locator("table:has(caption:text('Its history on chain')) tbody tr")
    await expect(history.filter(has_text="ChannelClosing")).to_have_count(1)
    await expect(history.filter(has_text="ChannelChallenged")).to_have_count(1)
    assert app.elsewhere == []
