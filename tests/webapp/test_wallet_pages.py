"""The wallet's channel, token and exchange pages, by real clicks in Chromium against two
`m2mpay node` processes on one embedded chain (the second joins the first's chain by its
`--chain-dir`, as the demo's nodes do): a channel opened, paid, topped up and closed with
the payment shown live on the payee's own page and the open on chain; a token created,
pooled and swapped with the balances and the pool changing on the page; a swap past its
slippage refused with the exchange's reason; nothing done without the token."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from m2mpay.bench.daemons import NodeProcess
from tests.cli.conftest import cli
from tests.webapp.app_kit import AppPage, axe_check, logged_in, open_app, screenshot, shown

_ANY_CHANNEL = 'main[data-ready^="/channels/0x"]'


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    root = tmp_path_factory.mktemp("wallet-pages")
    chain = ("--no-mqtt", "--chain-dir", str(root / "chain"))
    payer, payee = NodeProcess(root / "payer", *chain), NodeProcess(root / "payee", *chain)
    payer.start()  # hosts the chain
    try:
        payee.start()
        try:
            yield payer, payee
        finally:
            payee.stop()
    finally:
        payer.stop()


@pytest.fixture(scope="module")
def node(nodes: tuple[NodeProcess, NodeProcess]) -> NodeProcess:
    """The node `app` opens (conftest's fixture, here the payer of two)."""
    return nodes[0]


@pytest.fixture
async def payee_app(
    browser: Browser, nodes: tuple[NodeProcess, NodeProcess]
) -> AsyncIterator[AppPage]:
    opened = await open_app(browser, nodes[1])
    try:
        yield opened
    finally:
        await opened.page.context.close()


def _api(node: NodeProcess) -> httpx.Client:
    token = node.ready["api_token"]
    return httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _posted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def _faucet(app: AppPage) -> None:
    await logged_in(app, "/wallet")
    await app.page.get_by_role("button", name="Use the faucet").click()
    await expect(app.page.get_by_text("The faucet paid this node.")).to_be_visible()


def _row(app: AppPage, caption: str, cell: str) -> Any:
    table = app.page.locator("table", has=app.page.locator("caption", has_text=caption))
    return table.locator("tbody tr", has=app.page.get_by_role("cell", name=cell, exact=True))


@pytest.mark.slow  # two node processes started for the module, a channel opened and closed: ~20 s
async def test_open_pay_top_up_close_with_the_payment_live_on_the_payees_page(
    app: AppPage, payee_app: AppPage, nodes: tuple[NodeProcess, NodeProcess]
) -> None:
    payer, payee = nodes
    await _faucet(app)
    await app.go("/channels")
    await shown(app, "/channels")
    await app.page.get_by_label("Peer (address)").fill(str(payee.ready["address"]))
    await app.page.get_by_label("Peer's endpoint").fill(str(payee.ready["peer_endpoint"]))
    await app.page.get_by_label("Deposit").fill("10")
    await app.page.get_by_role("button", name="Open the channel").click()
    await app.page.wait_for_selector(_ANY_CHANNEL, timeout=60_000)
    channel = await app.page.get_by_test_id("channel-id").inner_text()
    assert re.fullmatch(r"0x[0-9a-f]{64}", channel)
    await expect(app.page.get_by_test_id("channel-phase")).to_have_text("open")
    await expect(app.page.get_by_test_id("channel-deposits")).to_have_text("10 M2M / 0 M2M")

    # The payee's own app, on the same channel, listening before the payment is made.
    async with payee_app.page.expect_response(f"{payee.url}/v1/events") as listening:
        await logged_in(payee_app, f"/channels/{channel}")
    assert (await listening.value).ok
    await payee_app.page.evaluate("() => { window.__sameDocument = true; }")
    await expect(_row(payee_app, "Payments made", "received")).to_have_count(0)

    await app.page.get_by_label("Amount to pay").fill("2.5")
    await app.page.get_by_role("button", name="Pay", exact=True).click()
    await expect(app.page.get_by_text("Paid; the peer holds it.")).to_be_visible()
    await expect(app.page.get_by_test_id("channel-balances")).to_have_text("7.5 M2M / 2.5 M2M")
    await expect(_row(app, "Payments made", "sent")).to_contain_text("2.5 M2M")

    # Live on the payee's page: the row from the event stream, the totals read again.
    received = _row(payee_app, "Payments made", "received")
    await expect(received).to_have_count(1)
    await expect(received).to_contain_text("2.5 M2M")
    await expect(payee_app.page.get_by_test_id("channel-totals")).to_have_text(
        "0 M2M in 0 / 2.5 M2M in 1"
    )
    assert await payee_app.page.evaluate("() => window.__sameDocument") is True  # no reload
    await axe_check(payee_app.page)
    await screenshot(payee_app.page, "webapp-channel-payee")

    await _on_chain_top_up_and_close(app, payee_app, payer, payee, channel)


async def _the_open_decoded(
    app: AppPage, payer: NodeProcess, payee: NodeProcess, channel: str
) -> None:
    """The explorer's transaction page shows the hub's open call decoded: sent by the payer,
    succeeded, both parties in the call's channel struct, the ChannelOpened event."""
    page = app.page
    await expect(page.locator("dl.facts dd.good")).to_have_text("success")
    facts = page.locator("dl.facts")
    await expect(facts.get_by_role("link", name=_same(payer.ready["address"]))).to_have_count(1)
    await expect(page.get_by_test_id("call")).to_contain_text("ChannelHub.open")
    call = page.locator("section", has=page.get_by_role("heading", name="Call"))
    for party in (payer.ready["address"], payee.ready["address"]):
        await expect(call.get_by_role("link", name=_same(party))).to_have_count(1)
    opened = page.get_by_test_id("event").filter(has_text="ChannelOpened from ChannelHub")
    await expect(opened).to_have_count(1)
    await expect(opened.get_by_role("link", name=_same(channel))).to_have_count(1)


def _same(hex_value: object) -> re.Pattern[str]:
    """A link's whole text equal to an address or hash, in either case (checksummed or not)."""
    return re.compile(f"^{re.escape(str(hex_value))}$", re.IGNORECASE)


async def _on_chain_top_up_and_close(
    app: AppPage, payee_app: AppPage, payer: NodeProcess, payee: NodeProcess, channel: str
) -> None:
    # The open on chain: in the page's history, a link to the explorer's page of its
    # transaction, where the hub's open call and its event are decoded.
    opened = _row(app, "The hub's events", "ChannelOpened")
    await expect(opened).to_have_count(1)
    tx_link = opened.get_by_role("link")
    tx_hash = await tx_link.inner_text()
    assert re.fullmatch(r"0x[0-9a-fA-F]{64}", tx_hash)
    await tx_link.click()
    await shown(app, f"/explorer/tx/{tx_hash}")
    await _the_open_decoded(app, payer, payee, channel)
    # The same page by the header's search box, as a person pasting the hash would.
    await app.go("/explorer")
    await shown(app, "/explorer")
    box = app.page.get_by_role("searchbox", name="Search the chain")
    await box.fill(tx_hash)
    await box.press("Enter")
    await shown(app, f"/explorer/tx/{tx_hash}")
    await _the_open_decoded(app, payer, payee, channel)
    await app.go(f"/channels/{channel}")
    await shown(app, f"/channels/{channel}")

    await app.page.get_by_label("Amount to deposit").fill("5")
    await app.page.get_by_role("button", name="Top up").click()
    await expect(app.page.get_by_text("Deposited on chain.")).to_be_visible()
    await expect(app.page.get_by_test_id("channel-deposits")).to_have_text("15 M2M / 0 M2M")
    await expect(_row(app, "The hub's events", "ChannelDeposited")).to_have_count(1)
    await axe_check(app.page)
    await screenshot(app.page, "webapp-channel")

    await app.page.get_by_role("button", name="Close the channel").click()
    await expect(app.page.get_by_text("The channel is closed.")).to_be_visible(timeout=60_000)
    await expect(payee_app.page.get_by_test_id("channel-phase")).to_have_text("closed")
    await app.go("/channels")
    await shown(app, "/channels")
    listed = app.page.locator("table tbody tr", has_text=channel[:10])
    await expect(listed).to_contain_text("closed")
    await axe_check(app.page)
    await screenshot(app.page, "webapp-channels")
    posts = app.api_calls("POST")
    assert f"POST /v1/channels/{channel}/deposits" in posts
    assert app.elsewhere == []
    assert payee_app.elsewhere == []


async def test_a_top_up_by_the_cli_shows_on_the_channel_page_live(
    app: AppPage, nodes: tuple[NodeProcess, NodeProcess]
) -> None:
    payer, payee = nodes
    with _api(payer) as api:
        _posted(api.post("/v1/wallet/faucet", json={}))
        channel = _posted(
            api.post(
                "/v1/channels",
                json={
                    "peer": payee.ready["address"],
                    "endpoint": payee.ready["peer_endpoint"],
                    "deposit": str(4 * 10**18),
                },
            )
        )["channel_id"]
    async with app.page.expect_response(f"{payer.url}/v1/events") as listening:
        await logged_in(app, f"/channels/{channel}")
    assert (await listening.value).ok
    await expect(app.page.get_by_test_id("channel-deposits")).to_have_text("4 M2M / 0 M2M")

    env = {"M2MPAY_URL": payer.url, "M2MPAY_TOKEN": str(payer.ready["api_token"])}
    topped = await asyncio.to_thread(cli, "channel", "top-up", channel[:12], "3", "--json", **env)
    assert topped.exit_code == 0, topped.output
    assert json.loads(topped.stdout)["deposit_mine"] == "4000000000000000003"
    # Not by this page: its channel's events bring the new deposit and the chain's record.
    await expect(app.page.get_by_test_id("channel-deposits")).to_have_text(
        "4.000000000000000003 M2M / 0 M2M"
    )
    await expect(_row(app, "The hub's events", "ChannelDeposited")).to_have_count(1)
    assert app.api_calls("POST") == []


async def _pick(app: AppPage, label: str, symbol: str) -> None:
    await app.page.get_by_label(label, exact=True).select_option(label=symbol)


async def test_a_token_created_pooled_and_swapped_changes_the_balances_and_the_pool(
    app: AppPage,
) -> None:
    await _faucet(app)
    await app.go("/tokens")
    await shown(app, "/tokens")
    await app.page.get_by_label("Name").fill("Lamp Light")
    await app.page.get_by_label("Symbol").fill("LIGHT")
    await app.page.get_by_label("Supply").fill("1000000")
    await app.page.get_by_role("button", name="Create the token").click()
    await expect(app.page.get_by_text(re.compile(r"Created LIGHT at 0x"))).to_be_visible()
    await expect(_row(app, "Tokens the factory made", "LIGHT")).to_contain_text("1,000,000")
    await axe_check(app.page)
    await screenshot(app.page, "webapp-tokens")

    await app.go("/exchange")
    await shown(app, "/exchange")
    await expect(_row(app, "Balances", "LIGHT")).to_contain_text("1,000,000")
    await _pick(app, "First asset", "LIGHT")
    await app.page.get_by_label("Amount of the first").fill("1000")
    await _pick(app, "Second asset", "M2M")
    await app.page.get_by_label("Amount of the second").fill("100")
    await app.page.get_by_role("button", name="Add liquidity").click()
    await expect(
        app.page.get_by_text(re.compile(r"^Added 1,000 LIGHT and 100 M2M"))
    ).to_be_visible()
    pool = app.page.locator("table", has_text="The exchange's pools").locator(
        "tbody tr", has_text="LIGHT"
    )
    await expect(pool).to_have_count(1)
    await expect(pool).to_contain_text("1,000 LIGHT")
    await expect(pool).to_contain_text("100 M2M")
    await expect(_row(app, "Balances", "LIGHT")).to_contain_text("999,000")

    await _pick(app, "Sell", "LIGHT")
    await _pick(app, "Buy", "M2M")
    await app.page.get_by_label("Amount to sell").fill("10")
    quote = app.page.get_by_test_id("quote")
    await expect(quote).to_contain_text(re.compile(r"^10 LIGHT pays 0\.98\d* M2M now"))
    paid = re.search(r"pays ([\d.]+) M2M", await quote.inner_text())
    assert paid is not None
    await app.page.get_by_role("button", name="Swap", exact=True).click()
    await expect(app.page.get_by_text(f"Swapped 10 LIGHT for {paid[1]} M2M")).to_be_visible()
    await expect(_row(app, "Balances", "LIGHT")).to_contain_text("998,990")
    await expect(pool).to_contain_text("1,010 LIGHT")
    # Some of the pool's shares given back: fewer shares, both reserves lower.
    await app.page.get_by_label("Shares to give back").fill(str(10**20))
    await app.page.get_by_role("button", name="Remove liquidity").click()
    await expect(
        app.page.get_by_text(re.compile(r"^Removed 100,000,000,000,000,000,000 shares for"))
    ).to_be_visible()
    await expect(pool).not_to_contain_text("1,010 LIGHT")
    assert [c for c in app.api_calls("POST") if "/v1/dex/" in c] == [
        "POST /v1/dex/liquidity",
        "POST /v1/dex/swaps",
        "POST /v1/dex/liquidity/removals",
    ]
    await axe_check(app.page)
    await screenshot(app.page, "webapp-exchange")
    assert app.elsewhere == []


async def test_a_swap_past_its_slippage_is_refused_with_the_exchanges_reason(
    app: AppPage, node: NodeProcess
) -> None:
    with _api(node) as api:
        _posted(api.post("/v1/wallet/faucet", json={}))
        made = _posted(
            api.post("/v1/tokens", json={"name": "Slip", "symbol": "SLIP", "supply": str(10**24)})
        )
        token = made["address"]
        m2m = api.get("/v1/info").json()["contracts"]["token"]
        _posted(
            api.post(
                "/v1/dex/liquidity",
                json={
                    "asset_a": token,
                    "asset_b": m2m,
                    "amount_a": str(10**21),
                    "amount_b": str(10**20),
                },
            )
        )
    await logged_in(app, "/exchange")
    await _pick(app, "Sell", "SLIP")
    await _pick(app, "Buy", "SLIP")
    await expect(app.page.get_by_test_id("quote")).to_have_text("Pick two different assets.")
    await app.page.get_by_role("button", name="Swap", exact=True).click()
    await expect(app.page.get_by_label("Buy", exact=True)).to_have_attribute("aria-invalid", "true")
    await expect(app.page.get_by_text("sell one asset for another")).to_be_visible()
    await _pick(app, "Buy", "M2M")
    await app.page.get_by_label("Amount to sell").fill("10")
    await expect(app.page.get_by_test_id("quote")).to_contain_text("10 SLIP pays")
    held = await _row(app, "Balances", "SLIP").inner_text()
    # Someone else's swap moves the pool after the quote was shown: the minimum taken
    # from that quote (less 0.5 %) is now more than the pool pays.
    with _api(node) as api:
        _posted(
            api.post(
                "/v1/dex/swaps",
                json={"sell": token, "buy": m2m, "amount_in": str(10**20), "slippage_bps": 10_000},
            )
        )
    await app.page.get_by_role("button", name="Swap", exact=True).click()
    refusal = app.page.get_by_role("alert").filter(has_text="below the minimum")
    await expect(refusal).to_be_visible()
    await expect(refusal).to_contain_text(
        re.compile(
            r"^The pool moved since the quote: the swap would pay less than the 0\.98\d* M2M"
        )
    )
    # The quote is read again: the pool's new, lower price.
    await expect(app.page.get_by_test_id("quote")).to_contain_text(re.compile(r"pays 0\.8\d* M2M"))
    await expect(app.page.get_by_label("Slippage accepted (%)")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert await _row(app, "Balances", "SLIP").inner_text() == held
    await axe_check(app.page)
    await screenshot(app.page, "webapp-exchange-refused")


async def test_nothing_acts_without_the_token(app: AppPage) -> None:
    for route in ("/channels", "/tokens", "/exchange", "/channels/0x" + "ab" * 32):
        await app.go(route)
        await shown(app, "/login")
        assert app.page.url.endswith("#/login?next=" + route.replace("/", "%2F"))
    await logged_in(app, "/exchange")
    await app.page.evaluate("() => sessionStorage.clear()")  # the session's token gone
    await app.page.get_by_label("Amount of the first").fill("1")
    await app.page.get_by_label("Amount of the second").fill("1")
    await app.page.get_by_role("button", name="Add liquidity").click()
    await shown(app, "/login")
    assert app.api_calls("POST") == []
    assert app.elsewhere == []
