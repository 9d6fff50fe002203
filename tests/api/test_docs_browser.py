"""/docs of a real `m2mpay node` process in headless Chromium (Debian's, driven by
Playwright) that may reach nothing but the node: the page must render Swagger UI with
its Authorize button, and "Try it out" must send the token, for a read and for a write
(its body the schema's example). Any request elsewhere (a CDN, a validator, a font) is
refused and fails the test. The screenshot is kept in the
test's tmp_path; its path is printed (pytest -s, or in the captured output)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Response, Route, sync_playwright

from m2mpay.bench.daemons import NodeProcess

CHROMIUM = "/usr/bin/chromium"  # the Makefile's system-deps installs it; never a download


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path / "node")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def offline_page(daemon: NodeProcess) -> Iterator[tuple[Page, list[str]]]:
    """A page whose every request not to the node is aborted (and listed)."""
    elsewhere: list[str] = []

    def only_the_node(route: Route) -> None:
        if route.request.url.startswith(f"{daemon.url}/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_the_node)
            yield context.new_page(), elsewhere
        finally:
            browser.close()


def _try_it_out(page: Page, method: str, url: str) -> Response:
    """Opens an operation, presses Try it out and Execute; the node's answer."""
    path = "/" + url.split("/", 3)[3]
    # `.first`: an operation with two tags (`node`, `wallet`) is listed under each.
    operation = page.locator(f'.swagger-ui .opblock-{method}:has([data-path="{path}"])').first
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    with page.expect_response(url) as answer:
        operation.locator(".btn.execute").click()
    return answer.value


def test_the_docs_render_offline_with_authorize_and_try_it_out_sends_the_token(
    daemon: NodeProcess, offline_page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    page, elsewhere = offline_page
    page.goto(f"{daemon.url}/docs")  # the root leads to the web app (tests/webapp/)
    authorize = page.locator(".swagger-ui .auth-wrapper .btn.authorize")
    authorize.wait_for(state="visible", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() >= 15  # the operations rendered
    screenshot = tmp_path / "docs.png"
    page.screenshot(path=str(screenshot))
    print(f"screenshot of /docs offline: {screenshot}")
    assert screenshot.stat().st_size > 10_000

    # Authorize with the node's token, then try a read and a write that need it.
    authorize.click()
    page.locator(".swagger-ui .modal-ux input").fill(daemon.ready["api_token"])
    page.locator(".swagger-ui .modal-ux .auth-btn-wrapper .btn.authorize").click()
    page.locator(".swagger-ui .modal-ux .btn-done").click()
    bearer = f"Bearer {daemon.ready['api_token']}"
    wallet = _try_it_out(page, "get", f"{daemon.url}/v1/wallet")
    assert (wallet.status, wallet.request.headers["authorization"]) == (200, bearer)
    assert wallet.json()["address"] == daemon.ready["address"]
    # The faucet's body is prefilled from the schema's example (1,000 tokens).
    faucet = _try_it_out(page, "post", f"{daemon.url}/v1/wallet/faucet")
    assert (faucet.status, faucet.request.headers["authorization"]) == (200, bearer)
    assert faucet.request.post_data_json == {"amount": "1000000000000000000000"}
    page.screenshot(path=str(tmp_path / "docs-try-it-out.png"))
    assert elsewhere == []
