"""The web app in Chromium against a real `m2mpay node` process (embedded chain): served
with its policy and reaching nothing but the node; login refused with a wrong token and
kept only in sessionStorage with the right one; the wallet's balances, faucet and send
(the recipient's balance read back from the chain); nothing acts without the token; axe
finds no serious or critical violation on any page; the nav is reachable by keyboard."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Route, expect

from m2mpay.bench.daemons import NodeProcess
from m2mpay.chain import TokenContract
from m2mpay.chain.shared import ledger_session
from m2mpay.crypto import Address, PrivateKey
from tests.waiting import eventually_async
from tests.webapp.app_kit import (
    AppPage,
    axe_check,
    logged_in,
    open_app,
    screenshot,
    shown,
)

_REFUSED = "Failed to load resource: the server responded with a status of 401"


def _balance_cell(app: AppPage, symbol: str, column: int = 1) -> str:
    return f'table:has(caption:text("Balances")) tr:has(td:text-is("{symbol}")) td >> nth={column}'


async def _on_chain(app: AppPage, symbol: str) -> str:
    return (await app.page.locator(_balance_cell(app, symbol)).inner_text()).strip()


async def _wallet_amount(app: AppPage, symbol: str) -> int:
    headers = {"Authorization": f"Bearer {app.node.ready['api_token']}"}
    async with httpx.AsyncClient(base_url=app.node.url, headers=headers) as http:
        balances = (await http.get("/v1/wallet")).json()["balances"]
    return int(next(b["on_chain"] for b in balances if b["symbol"] == symbol))


def _formatted(amount: int, decimals: int = 18) -> str:
    whole, fraction = divmod(amount, 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0")
    return f"{whole:,}" + (f".{digits}" if digits else "")


async def test_served_with_its_policy_and_nothing_leaves_the_node(
    browser: Browser, node: NodeProcess
) -> None:
    app = await open_app(browser, node)
    try:
        answer = await app.page.goto(f"{node.url}/")  # the root leads to the app
        assert answer is not None
        assert app.page.url == f"{node.url}/app/"
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "unsafe" not in policy
        await shown(app, "/")
        await expect(app.page.get_by_test_id("node-address")).to_have_text(
            str(node.ready["address"])
        )
        await expect(app.page.get_by_role("heading", level=1)).to_have_text("Overview")
        assert await app.page.title() == "Overview · m2mpay node"
        assert app.elsewhere == []  # no request elsewhere, no script or policy error
        assert all(call.startswith("GET ") for call in app.api_calls())
        await axe_check(app.page)
        await screenshot(app.page, "webapp-overview")
    finally:
        await app.page.context.close()


async def test_a_wrong_token_is_refused_with_a_message(app: AppPage) -> None:
    await app.go("/login")
    await shown(app, "/login")
    await axe_check(app.page)
    field = app.page.get_by_label("API token")
    assert await field.get_attribute("type") == "password"
    await field.fill("m2m_not-the-token")
    await app.page.get_by_role("button", name="Log in").click()
    await expect(app.page.get_by_role("alert")).to_have_text("the node refused this token")
    await expect(field).to_have_attribute("aria-invalid", "true")
    assert await app.page.evaluate("() => sessionStorage.length") == 0
    assert app.page.url.endswith("#/login")
    await screenshot(app.page, "webapp-login-refused")
    assert [e for e in app.elsewhere if _REFUSED not in e] == []


async def test_the_token_opens_the_wallet_and_lives_only_in_session_storage(
    app: AppPage,
) -> None:
    async with app.page.expect_request(f"{app.node.url}/v1/events") as listening:
        await logged_in(app, "/wallet")
    await expect(app.page.get_by_role("heading", level=1)).to_have_text("Wallet")
    assert await app.page.title() == "Wallet · m2mpay node"
    for symbol in ("ETH", "M2M"):
        await expect(app.page.locator(_balance_cell(app, symbol))).to_have_count(1)
    token = str(app.node.ready["api_token"])
    stored = await app.page.evaluate(
        "() => ({session: {...sessionStorage}, local: localStorage.length,"
        " cookie: document.cookie})"
    )
    assert list(stored["session"].values()) == [token]
    assert stored["local"] == 0
    assert stored["cookie"] == ""
    assert await app.page.context.cookies() == []
    assert not any(token in call for call in app.requested)  # never in a URL
    # The event stream the wallet listens to (fetch, not EventSource) sends it as a header.
    events = await listening.value
    assert await events.header_value("authorization") == f"Bearer {token}"
    assert app.api_calls().count("GET /v1/events") == 1  # one subscription, shared
    assert app.elsewhere == []
    await axe_check(app.page)
    await screenshot(app.page, "webapp-wallet")


async def test_the_faucet_raises_the_balance_and_send_moves_coins(app: AppPage) -> None:
    await logged_in(app, "/wallet")
    before = await _on_chain(app, "M2M")
    await app.page.get_by_role("button", name="Use the faucet").click()
    await expect(app.page.get_by_text("The faucet paid this node.")).to_be_visible()
    after = await _on_chain(app, "M2M")
    assert (
        int(after.replace(",", "").split(".")[0])
        == int(before.replace(",", "").split(".")[0]) + 1_000
    )
    assert "POST /v1/wallet/faucet" in app.api_calls("POST")

    recipient = PrivateKey(bytes(31) + b"\x77").address
    send = app.page.get_by_role("form", name="Send")
    await send.get_by_label("To (address)").fill(recipient.checksum)
    await send.get_by_label("Asset").select_option(label="M2M")
    await send.get_by_label("Amount").fill("1.5")
    await send.get_by_role("button", name="Send").click()
    await expect(send.get_by_role("status")).to_contain_text("Sent in block")
    token_address = Address(str(app.node.ready["token_contract"]))
    async with ledger_session(data_dir=app.node.data_dir) as ledger:
        token = TokenContract(ledger, token_address)

        async def arrived() -> bool:
            return await token.balance_of(recipient) == 15 * 10**17

        await eventually_async(arrived)
    # What the page shows is the node's integer with its 18 decimals, digit for digit.
    await expect(app.page.locator(_balance_cell(app, "M2M"))).to_have_text(
        _formatted(await _wallet_amount(app, "M2M"))
    )
    await expect(app.page.locator(_balance_cell(app, "ETH"))).to_have_text(
        _formatted(await _wallet_amount(app, "ETH"))
    )
    await screenshot(app.page, "webapp-wallet-sent")
    assert app.elsewhere == []


async def test_a_bad_amount_is_named_and_nothing_is_sent(app: AppPage) -> None:
    await logged_in(app, "/wallet")
    send = app.page.get_by_role("form", name="Send")
    await send.get_by_label("To (address)").fill(PrivateKey(bytes(31) + b"\x78").address.checksum)
    await send.get_by_label("Amount").fill("1.2.3")
    await send.get_by_role("button", name="Send").click()
    amount = send.get_by_label("Amount")
    await expect(amount).to_have_attribute("aria-invalid", "true")
    await expect(send.get_by_role("alert")).to_have_text("a number such as 1.5")
    assert "POST /v1/wallet/transfers" not in app.api_calls("POST")


async def test_without_the_token_nothing_acts(app: AppPage) -> None:
    await app.go("/wallet")
    await shown(app, "/login")  # the wallet needs the token: the login page instead
    assert "#/login?next=%2Fwallet" in app.page.url
    assert app.api_calls("POST") == []
    assert "GET /v1/wallet" not in app.api_calls()
    # A token the node no longer takes: the first answer (401) sends back to the login.
    await app.page.evaluate("() => sessionStorage.setItem('m2mpay.api-token', 'm2m_stale')")
    await app.page.reload()
    await shown(app, "/login")
    await app.go("/wallet")
    await shown(app, "/login")
    assert "GET /v1/wallet" in app.api_calls()  # asked with the stale token, refused
    assert await app.page.evaluate("() => sessionStorage.length") == 0
    # Logged in, then out: the token is gone and the wallet is closed again.
    await logged_in(app, "/wallet")
    await app.page.get_by_role("button", name="Log out").click()
    await shown(app, "/login")
    assert await app.page.evaluate("() => sessionStorage.length") == 0
    await app.go("/wallet")
    await shown(app, "/login")
    assert app.api_calls("POST") == []


async def test_the_nav_is_reached_by_keyboard_and_focus_follows_navigation(
    app: AppPage,
) -> None:
    await shown(app, "/")
    await app.page.keyboard.press("Tab")
    focused = "() => document.activeElement.textContent.trim()"
    assert await app.page.evaluate(focused) == "Skip to content"
    reached: list[str] = []
    while "Log in" not in reached and len(reached) < 30:  # the nav grows with the pages
        await app.page.keyboard.press("Tab")
        reached.append(await app.page.evaluate(focused))
    assert reached[:2] == ["Overview", "Wallet"]
    assert reached[-1] == "Log in"
    assert {
        "Channels",
        "Tokens",
        "Exchange",
        "Dashboard",
        "Data",
        "Receipts",
        "Streams",
        "Explorer",
        "Registry",
        "Peers",
        "Disputes",
    } <= set(reached)
    # Grouped, each group a list named for what it holds.
    nav = app.page.get_by_role("navigation", name="Main")
    for group, links in (
        ("Wallet", ["Overview", "Wallet", "Channels", "Receipts"]),
        ("Market", ["Tokens", "Exchange", "Data"]),
        ("Live", ["Dashboard", "Streams"]),
        ("Network", ["Explorer", "Registry", "Peers", "Disputes"]),
    ):
        listed = nav.get_by_role("list", name=group).get_by_role("link")
        assert await listed.all_inner_texts() == links, group
    # Then the header's search of the chain, and its button.
    await app.page.keyboard.press("Tab")
    assert await app.page.evaluate("() => document.activeElement.id") == "chain-search"
    await app.page.keyboard.press("Tab")
    assert await app.page.evaluate(focused) == "Search"
    # Wallet (needs the token) by Enter: the login page, its heading focused.
    while await app.page.evaluate(focused) != "Wallet":
        await app.page.keyboard.press("Shift+Tab")
    await app.page.keyboard.press("Enter")
    await shown(app, "/login")
    assert await app.page.evaluate("() => document.activeElement.tagName") == "H1"
    assert await app.page.evaluate(focused) == "Log in"
    # The skip link moves focus to the content without changing the route.
    await app.page.keyboard.press("Shift+Tab")
    while await app.page.evaluate(focused) != "Skip to content":
        await app.page.keyboard.press("Shift+Tab")
    await app.page.keyboard.press("Enter")
    assert await app.page.evaluate("() => document.activeElement.id") == "main"
    assert "#/login" in app.page.url


async def test_the_node_refusal_is_shown_at_its_field(app: AppPage) -> None:
    await logged_in(app, "/wallet")
    send = app.page.get_by_role("form", name="Send")
    await send.get_by_label("To (address)").fill(PrivateKey(bytes(31) + b"\x79").address.checksum)
    await send.get_by_label("Asset").select_option(label="M2M")
    await send.get_by_label("Amount").fill("1000000000")
    await send.get_by_role("button", name="Send").click()
    # 409 insufficient_funds, field "amount", in the node's one error shape.
    await expect(send.get_by_label("Amount")).to_have_attribute("aria-invalid", "true")
    await expect(send.get_by_role("alert")).to_contain_text("more than the")
    assert app.api_calls("POST") == ["POST /v1/wallet/transfers"]
    await expect(send.get_by_role("button", name="Send")).to_be_enabled()


async def test_the_event_stream_reconnects_after_it_drops(app: AppPage) -> None:
    dropped: list[str] = []

    async def drop_the_first(route: Route) -> None:
        if not dropped:
            dropped.append(route.request.url)
            await route.abort("connectionreset")
        else:
            await route.fallback()

    await app.page.route("**/v1/events", drop_the_first)
    async with app.page.expect_request("**/v1/events") as first:
        await logged_in(app, "/wallet")
    assert (await first.value).url == dropped[0]
    async with app.page.expect_request("**/v1/events") as again:
        pass  # the app tries again on its own, after its backoff
    retried = await again.value
    assert await retried.header_value("authorization") is not None
    await expect(app.page.get_by_role("table")).to_contain_text("M2M")
