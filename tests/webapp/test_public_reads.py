"""The web app on a node with public reads (`m2mpay node --public-reads`): the overview says
so, and the login still tells a wrong token from the right one, though every read is open
(it asks a write, which the node refuses before reading its empty body)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, expect

from m2mpay.bench.daemons import NodeProcess
from tests.webapp.app_kit import logged_in, open_app, shown


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(
        tmp_path_factory.mktemp("webapp-public") / "node", "--no-mqtt", "--public-reads"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_public_reads_shown_and_the_login_still_checks_the_token(
    browser: Browser, node: NodeProcess
) -> None:
    app = await open_app(browser, node)
    try:
        await shown(app, "/")
        await expect(app.page.get_by_text("yes: reads need no token")).to_be_visible()
        await app.go("/login")
        await shown(app, "/login")
        await app.page.get_by_label("API token").fill("m2m_not-the-token")
        await app.page.get_by_role("button", name="Log in").click()
        await expect(app.page.get_by_role("alert")).to_have_text("the node refused this token")
        assert await app.page.evaluate("() => sessionStorage.length") == 0
        await logged_in(app, "/wallet")
        await expect(app.page.get_by_role("table")).to_contain_text("M2M")
        # The check was a write refused for its empty body: nothing was sent.
        assert app.api_calls("POST") == ["POST /v1/wallet/transfers"] * 2
    finally:
        await app.page.context.close()


async def test_the_explorer_is_open_without_the_token_when_reads_are_public(
    browser: Browser, node: NodeProcess
) -> None:
    app = await open_app(browser, node, "/explorer")
    try:
        await shown(app, "/explorer")  # no detour by the login page
        rows = app.page.locator("table:has(caption:text('Newest blocks')) tbody tr")
        await expect(rows.first).to_be_visible()
        box = app.page.get_by_role("searchbox", name="Search the chain")
        await box.fill(str(node.ready["address"]).lower())
        await box.press("Enter")
        await shown(app, f"/explorer/address/{node.ready['address']}")
        await expect(app.page.get_by_test_id("contract")).to_have_text("an account")
        for route in ("/registry", "/peers", "/disputes"):
            await app.go(route)
            await shown(app, route)
        assert await app.page.evaluate("() => sessionStorage.length") == 0
        assert app.elsewhere == []
    finally:
        await app.page.context.close()
