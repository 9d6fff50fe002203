"""The explorer's pages in Chromium against two real node processes on one embedded chain,
after a channel was opened, paid and closed and a token made, pooled and swapped (the API
tests' story): the open transaction shown with its hub call and events decoded, the
channel's history, the node's address with its LIGHT bought (the swap's exchange call and the
registry's listing call decoded too), the header's search landing
on each kind; the blocks page live as blocks arrive; the registry's listing with its
reputation, the peers, the watcher's disputes; axe clean, screenshots written."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from m2mpay.bench.daemons import NodeProcess
from m2mpay.bench.explorer import grow_chain
from tests.api.test_explorer import nodes, story  # noqa: F401 (the chain's story)
from tests.webapp.app_kit import AppPage, axe_check, logged_in, screenshot, shown


@pytest.fixture(scope="module")
def node(nodes: tuple[NodeProcess, NodeProcess]) -> NodeProcess:  # noqa: F811
    """The node the app is opened on (`app`): the story's first."""
    return nodes[0]


@pytest.fixture(scope="module")
def chain(story: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """The story, with a service listed in the registry by the node and its open tx."""
    api = story["api"]
    listed = api.post(
        "/v1/registry/services",
        json={"kind": "energy", "unit": "Wh", "price": "2500000000000000", "location": "u33dc0"},
    )
    assert listed.status_code == 201, listed.text
    history = api.get(f"/v1/explorer/channels/{story['channel']}").json()
    return {**story, "open_tx": history["events"][0]["tx_hash"], "history": history}


ZERO = "0x" + "00" * 20


def _formatted(amount: int, decimals: int = 18) -> str:
    """As the app shows an integer amount: thousands separated, no trailing zeros."""
    whole, fraction = divmod(amount, 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0")
    return f"{whole:,}" + (f".{digits}" if digits else "")


async def _search(app: AppPage, query: str) -> None:
    box = app.page.get_by_role("searchbox", name="Search the chain")
    await box.fill(query)
    await box.press("Enter")


@pytest.mark.slow  # the first of the module: its story is set up here (~40 s)
async def test_without_the_token_the_explorer_asks_for_it_first(
    app: AppPage, chain: dict[str, Any]
) -> None:
    await app.go(f"/explorer/channel/{chain['channel']}")
    await shown(app, "/login")  # reads need the token on this node
    assert app.api_calls() == ["GET /v1/info"]
    await logged_in(app, f"/explorer/channel/{chain['channel']}")


async def test_the_open_transaction_shows_the_hub_s_call_and_events_decoded(
    app: AppPage, chain: dict[str, Any]
) -> None:
    await logged_in(app, f"/explorer/tx/{chain['open_tx']}")
    page = app.page
    await expect(page.get_by_test_id("call")).to_contain_text("ChannelHub.open")
    events = page.get_by_test_id("event")
    await expect(events.first).to_contain_text("ChannelOpened from ChannelHub")
    await expect(events.filter(has_text="Transfer from Token")).to_have_count(1)
    # The decoded channel struct names both parties, each a link to its address page.
    call = page.locator("section", has=page.get_by_role("heading", name="Call"))
    for party in (chain["address"], chain["peer"]):
        await expect(call.get_by_role("link", name=party)).to_have_count(1)
    opened = events.first
    await expect(opened.get_by_role("link", name=chain["channel"])).to_have_count(1)
    await axe_check(page)
    await screenshot(page, "webapp-explorer-transaction")

    # Its block, by the link: the block lists the transaction, linked back.
    await page.locator("dt:text-is('Block') + dd a").click()
    block = chain["history"]["events"][0]["block"]
    await shown(app, f"/explorer/block/{block}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Block {block}")
    await expect(page.get_by_role("link", name=chain["open_tx"])).to_be_visible()
    await axe_check(page)
    await screenshot(page, "webapp-explorer-block")
    assert app.elsewhere == []


async def test_the_channel_s_history_from_open_to_settle(
    app: AppPage, chain: dict[str, Any]
) -> None:
    await logged_in(app, f"/explorer/channel/{chain['channel']}")
    rows = app.page.locator("table:has(caption:text('Its history on chain')) tbody tr")
    names = [step["event"] for step in chain["history"]["events"]]
    await expect(rows).to_have_count(len(names))
    assert names[0] == "ChannelOpened"
    assert names[-1] == "ChannelSettled"
    for row, name in zip(await rows.all(), names, strict=True):
        await expect(row.locator("td").first).to_contain_text(name)
    await expect(rows.first).to_contain_text("deposit_a1000000")  # the integer, as sent
    await axe_check(app.page)
    await screenshot(app.page, "webapp-explorer-channel")
    # The first step's transaction is the open, by the link in its row.
    await rows.first.locator("td").nth(3).get_by_role("link").click()
    await shown(app, f"/explorer/tx/{chain['open_tx']}")


async def test_the_address_shows_the_token_bought_and_its_transfers(
    app: AppPage, chain: dict[str, Any]
) -> None:
    await logged_in(app, f"/explorer/address/{chain['address']}")
    page = app.page
    await expect(page.get_by_test_id("contract")).to_have_text("an account")
    holdings = page.locator("table:has(caption:text('Token balances'))")
    await expect(holdings.locator("tr", has_text="LIGHT")).to_have_count(1)
    transfers = page.locator("table:has(caption:text('Token transfers')) tbody tr")
    bought = transfers.filter(has=page.get_by_role("link", name="LIGHT", exact=True)).filter(
        has_text="in"
    )
    detail = chain["api"].get(f"/v1/explorer/addresses/{chain['address']}").json()
    swap = next(  # newest first: the LIGHT the pool paid for the ETH sold
        t
        for t in detail["transfers"]
        if t["token"] == chain["light"]
        and t["receiver"] == chain["address"]
        and t["sender"] != ZERO
    )
    row = transfers.filter(has=page.locator(f"a[title='{swap['tx_hash']}']"))
    await expect(row).to_have_count(1)
    # LIGHT has 18 decimals (/v1/tokens): the amount shown digit for digit from the string.
    await expect(row.locator("td").last).to_have_text(_formatted(int(swap["value"])))
    await expect(bought.first).to_be_visible()
    await axe_check(page)
    await screenshot(page, "webapp-explorer-address")

    # The swap's transaction, by the link in the row: the exchange's call decoded, and the
    # LIGHT it paid among its events.
    await row.get_by_role("link", name=swap["tx_hash"][:8], exact=False).click()
    await shown(app, f"/explorer/tx/{swap['tx_hash']}")
    await expect(page.get_by_test_id("call")).to_contain_text("Exchange.swap")
    events = page.get_by_test_id("event").filter(has_text="Transfer from Token")
    await expect(events.filter(has=page.get_by_text(swap["value"], exact=True))).to_have_count(1)
    # The token's own page: the contract it is.
    await app.go(f"/explorer/address/{chain['light']}")
    await shown(app, f"/explorer/address/{chain['light']}")
    await expect(page.get_by_test_id("contract")).to_have_text("the Token contract")


async def test_search_lands_on_each_kind(app: AppPage, chain: dict[str, Any]) -> None:
    await logged_in(app, "/explorer")
    block = chain["history"]["events"][0]["block"]
    landing = {
        chain["open_tx"]: f"/explorer/tx/{chain['open_tx']}",
        chain["channel"]: f"/explorer/channel/{chain['channel']}",
        chain["light"].lower(): f"/explorer/address/{chain['light']}",
        str(block): f"/explorer/block/{block}",
    }
    for query, route in landing.items():
        await _search(app, query)
        await shown(app, route)
        assert app.page.url.endswith(f"#{route}")
    box = app.page.get_by_role("searchbox", name="Search the chain")
    await _search(app, "hello")
    await expect(app.page.locator("#chain-search-problem")).to_contain_text("a block number")
    await expect(box).to_have_attribute("aria-invalid", "true")
    await _search(app, "0x" + "ab" * 32)
    await expect(app.page.locator("#chain-search-problem")).to_contain_text("nothing on chain")
    assert app.page.url.endswith(f"#/explorer/block/{block}")  # stayed where it was
    assert [c for c in app.api_calls() if "search" in c and "hello" in c] == []


async def test_the_blocks_page_is_paged_and_live_as_blocks_arrive(
    app: AppPage, chain: dict[str, Any]
) -> None:
    await logged_in(app, "/explorer")
    page = app.page
    rows = page.locator("table:has(caption:text('Newest blocks')) tbody tr")
    head = chain["api"].get("/v1/explorer/blocks", params={"limit": 1}).json()["head"]
    await expect(rows.first.locator("td").first).to_have_text(str(head))
    await axe_check(page)
    await screenshot(page, "webapp-explorer-blocks")
    # Blocks mined on the chain (empty ones, no event of the node's): the page shows the
    # newest without being reloaded.
    rpc_url = (app.node.data_dir / "chain.rpc").read_text().strip()
    newest = await grow_chain(rpc_url, head + 30)
    await expect(rows.first.locator("td").first).to_have_text(str(newest), timeout=15_000)
    # Older blocks, a page at a time, by keyboard.
    older = page.get_by_role("link", name="Older blocks")
    await older.focus()
    await page.keyboard.press("Enter")
    below = newest - 24
    await shown(app, "/explorer")
    await expect(page.locator(f"table:has(caption:text('Blocks below {below}'))")).to_be_visible()
    await expect(
        page.locator("table:has(caption:text('Blocks below')) tbody tr").first.locator("td").first
    ).to_have_text(str(below - 1))


async def test_registry_peers_and_disputes(app: AppPage, chain: dict[str, Any]) -> None:
    await logged_in(app, "/registry")
    page = app.page
    listing = page.locator("table:has(caption:text('Services listed')) tbody tr", has_text="Wh")
    await expect(listing).to_have_count(1)
    await expect(listing).to_contain_text("0.0025 M2M / Wh")
    await expect(listing).to_contain_text("no ratings yet")
    await axe_check(page)
    await screenshot(page, "webapp-registry")
    # The listing's transaction, from its block: the registry's call decoded.
    listed = chain["api"].get("/v1/registry/services").json()["services"]
    (mine,) = [s for s in listed if s["provider"] == chain["address"]]
    await app.go(f"/explorer/block/{mine['listed_block']}")
    await shown(app, f"/explorer/block/{mine['listed_block']}")
    await page.locator("main ol a").first.click()
    await expect(page.get_by_test_id("call")).to_contain_text("ServiceRegistry.")
    await axe_check(page)

    await app.go("/registry")
    await shown(app, "/registry")
    await listing.get_by_role("link").first.click()
    await shown(app, f"/explorer/address/{chain['address']}")
    reputation = page.locator("caption:text('Reputation in the registry'), p.empty")
    await expect(reputation.filter(has_text="No ratings in the registry.")).to_have_count(1)

    await app.go("/peers")
    await shown(app, "/peers")
    peer = page.locator('table:has(caption:text("This node\'s peers")) tbody tr')
    await expect(peer).to_have_count(1)
    await expect(peer).to_contain_text(chain["peer"])
    await expect(peer.locator("td").nth(2)).to_have_text("yes")
    await axe_check(page)
    await screenshot(page, "webapp-peers")

    await app.go("/disputes")
    await shown(app, "/disputes")
    await expect(page.get_by_test_id("watcher")).to_contain_text("This node has no watcher")
    await axe_check(page)
    assert app.elsewhere == []
