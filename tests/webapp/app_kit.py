"""What the web app's browser tests share (the pages' engineers reuse it): a page of the
app that reaches nothing but its node (`open_app`, over the provenance tests'
`offline_page`), logging in as a person does (`logged_in`), waiting for a page's content
(`shown`: `<main data-ready>`), axe-core's check (`axe_check`), and screenshots
(`screenshot`, into `$M2MPAY_SCREENSHOTS` or `.artifacts/screenshots/`)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from playwright.async_api import Browser, Page

from m2mpay.bench.daemons import NodeProcess
from tests.provenance.reader_kit import CHROMIUM, offline_page

__all__ = [
    "AXE",
    "CHROMIUM",
    "AppPage",
    "axe_check",
    "logged_in",
    "open_app",
    "screenshot",
    "shown",
]

_ROOT: Final = Path(__file__).resolve().parents[2]
AXE: Final = _ROOT / "node_modules" / "axe-core" / "axe.min.js"
_SCREENSHOTS: Final = _ROOT / ".artifacts" / "screenshots"
_TIMEOUT_MS: Final = 30_000
_BLOCKING: Final = ("serious", "critical")


@dataclass
class AppPage:
    """A browser page on the app and what it did: requests elsewhere, script errors and
    console errors (`elsewhere`, which a test expects empty), requests to the node."""

    page: Page
    node: NodeProcess
    elsewhere: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def url(self, route: str = "/") -> str:
        return f"{self.node.url}/app/#{route}"

    async def go(self, route: str) -> None:
        """To `route` (`/wallet`) by the hash router, as a click on a link does."""
        if self.page.url.startswith(f"{self.node.url}/app/"):
            await self.page.evaluate("(route) => { location.hash = route; }", route)
        else:
            await self.page.goto(self.url(route))

    def api_calls(self, method: str | None = None) -> list[str]:
        """The API paths the page asked (`"POST /v1/wallet/faucet"`), in order."""
        calls = [c for c in self.requested if " /v1/" in c]
        return [c for c in calls if method is None or c.startswith(f"{method} ")]


async def open_app(browser: Browser, node: NodeProcess, route: str = "/") -> AppPage:
    """A fresh browser context (no token, nothing stored) on the app at `route`."""
    elsewhere: list[str] = []
    page = await offline_page(browser, node.url, elsewhere)
    opened = AppPage(page, node, elsewhere)
    # The method too: which calls act (POST) and which only read.
    page.on(
        "request",
        lambda request: opened.requested.append(
            f"{request.method} {request.url.removeprefix(node.url)}"
        ),
    )
    await page.goto(opened.url(route))
    return opened


async def shown(app: AppPage, route: str) -> None:
    """Until the page at `route` has its data on screen (`<main data-ready=route>`)."""
    await app.page.wait_for_selector(f'main[data-ready="{route}"]', timeout=_TIMEOUT_MS)


async def logged_in(app: AppPage, route: str = "/wallet") -> None:
    """Log in through the login page with the node's token, then on to `route`."""
    await app.go(f"/login?next={route}")
    await shown(app, "/login")
    await app.page.get_by_label("API token").fill(str(app.node.ready["api_token"]))
    await app.page.get_by_role("button", name="Log in").click()
    await shown(app, route)


async def axe_check(page: Page) -> list[dict[str, Any]]:
    """axe-core (node_modules, never shipped) run in `page`; fails on any serious or
    critical violation, naming them; returns the lesser ones."""
    # Through the DevTools protocol (`evaluate`), which the page's CSP does not govern: a
    # <script> tag with axe's source would be refused, as the policy means it to be.
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(_axe_source() + "\n;undefined")
    result: dict[str, Any] = await page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations']})"
    )
    violations: list[dict[str, Any]] = result["violations"]
    blocking = [v for v in violations if v.get("impact") in _BLOCKING]
    assert not blocking, "axe: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in blocking
    )
    return [v for v in violations if v not in blocking]


@functools.cache
def _axe_source() -> str:
    return AXE.read_text()


def _screenshots() -> Path:
    folder = Path(os.environ.get("M2MPAY_SCREENSHOTS") or _SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def screenshot(page: Page, name: str) -> Path:
    """`name`.png of the whole page into $M2MPAY_SCREENSHOTS (or .artifacts/screenshots/)."""
    path = _screenshots() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
