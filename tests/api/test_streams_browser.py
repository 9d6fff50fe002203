"""The device's QR page and the web reader, both served by the node's own API app over
TCP, in headless Chromium (Debian's, through Playwright) that reaches nothing else: the
owner's page shows the session's stream's QR code, its link opens the node's reader,
which fetches the node's version 2 file (anchor proofs and all) and shows the stream
verified; no request carries the key, which stays in the URL's fragment."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from m2mpay.api import create_app
from m2mpay.api.fast import create_asgi
from m2mpay.asgi import AsgiServer
from tests.api.conftest import TOKEN
from tests.api.test_streams import SESSION, Served, served  # noqa: F401 (a fixture)
from tests.provenance.reader_kit import CHROMIUM, offline_page, settled


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def test_the_session_page_leads_to_the_reader_which_verifies_the_stream(
    served: Served,  # noqa: F811 (the fixture imported above)
    browser: Browser,
) -> None:
    server = AsgiServer(
        create_asgi(served.api.gateway, create_app(served.api.gateway)), port=0, name="node API"
    )
    url = await server.start()
    key = served.writer.key().hex()
    try:
        # The owner's display: its token in every request it makes to its node.
        elsewhere: list[str] = []
        requested: list[str] = []
        page = await offline_page(
            browser,
            url,
            elsewhere,
            requested=requested,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        await page.goto(f"{url}/v1/sessions/0x{SESSION.hex()}/qr")
        assert await page.locator("img").get_attribute("alt") == (
            f"QR code of provenance stream 0x{served.writer.stream_id.hex()}"
        )
        drawn = await page.locator("img").bounding_box()
        assert drawn is not None
        assert drawn["width"] > 100  # the SVG rendered under the page's policy
        await page.locator("a", has_text="Open in the reader").click()
        assert await settled(page) == "verified", await page.locator("#status").inner_text()
        assert await page.locator("#message-count").inner_text() == "7"
        assert await page.locator("#key").input_value() == key
        assert page.url.startswith(f"{url}/provenance/reader/#")
        assert not any(key in seen for seen in requested)
        assert any(seen.endswith(".jsonl") and "/v1/streams/" in seen for seen in requested)
        await page.context.close()
    finally:
        await server.stop()
    assert elsewhere == []
