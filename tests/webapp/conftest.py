"""Fixtures of the web app's browser tests: one `m2mpay node` process a module (embedded
chain, no MQTT), one Chromium a module (Debian's, through Playwright), and a fresh page
on the app for each test (`app`: a new browser context, so no token carries over)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, async_playwright

from m2mpay.bench.daemons import NodeProcess
from tests.webapp.app_kit import CHROMIUM, AppPage, open_app


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(tmp_path_factory.mktemp("webapp") / "node", "--no-mqtt")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def app(browser: Browser, node: NodeProcess) -> AsyncIterator[AppPage]:
    opened = await open_app(browser, node)
    try:
        yield opened
    finally:
        await opened.page.context.close()
