"""`m2mpay bench ui`: the web app (issue 17) in Chromium against a node process.

    tti_ms       per page: navigation start to the page's main content rendered and usable
                 (`<main data-ready="<route>">`, set by the app once the page's data
                 arrived and its handlers are attached), the median of `runs` cold loads
    js_gzip_kb   per page: the JavaScript that page loaded (every script it requested until
                 ready: the entry, the chunks it imports, its own page's and uPlot's chunks
                 fetched by import()), each file gzipped, summed (KiB)
    explorer_page_ms
                 the explorer's blocks page (`/explorer`, one page of 25 from the head) with
                 `explorer_blocks` blocks on the chain (10,000; mined empty with `anvil_mine`
                 as `m2mpay bench explorer` does), navigation to data-ready, the median of
                 `runs` cold loads; measured after the other pages, on the grown chain

One `m2mpay node --no-mqtt` (embedded chain) in a temporary directory; Debian's Chromium,
headless, through Playwright; each load in a fresh browser context (no cache, nothing
stored), the token for the pages that need it put in sessionStorage before the app starts,
as a logged-in tab has it. On loopback: the node's and the browser's time, not a network's.

    dashboard_latency_ms
                 a payment asked of the node's API (in the page, on its clock) to its
                 point drawn in the dashboard's payments chart: the median of at least
                 five (m2mpay.bench.ui_dashboard)

A measure is one function of the `UiRig` (`MEASURES`): another page's measure
(`explorer_page_ms`) is a function added there, with the pages its engineers add to
`PAGES`. Where this cannot run (no Chromium, no Playwright, the app
not built) every measure is None and the reason is given; nothing else is skipped.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import statistics
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from m2mpay.bench.daemons import NodeProcess
from m2mpay.bench.explorer import grow_chain
from m2mpay.bench.rig import Progress, narrator
from m2mpay.bench.ui_dashboard import dashboard_latency

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext

__all__ = ["MEASURES", "PAGES", "PageLoad", "UiRig", "measure_ui"]

CHROMIUM: Final = Path("/usr/bin/chromium")  # Debian's (make system-deps); never a download
PAGES: Final = {
    "overview": "/",
    "login": "/login",
    "wallet": "/wallet",
    "channels": "/channels",
    "tokens": "/tokens",
    "exchange": "/exchange",
    "data": "/data",
    "receipts": "/receipts",
    "streams": "/streams",
    "dashboard": "/dashboard",
    "explorer": "/explorer",
    "registry": "/registry",
    "peers": "/peers",
}
"""The pages measured, by name: their hash routes (web/app/routes.js)."""
_NEEDS_TOKEN: Final = frozenset(
    {"/wallet", "/channels", "/tokens", "/exchange", "/data", "/receipts", "/streams", "/dashboard"}
    | {"/explorer", "/registry", "/peers"}
)
EXPLORER_BLOCKS: Final = 10_000  # the chain's length for explorer_page_ms (issue 17)
_RPC_FILE: Final = "chain.rpc"  # where a node hosting its embedded chain serves it
_TOKEN_KEY: Final = "m2mpay.api-token"  # web/app/api.js
_TIMEOUT_MS: Final = 60_000
# Records when <main> first says a route is ready, on the page's own clock (ms since its
# navigation started), before any script of the app runs.
_WATCH_READY: Final = """
window.__m2mpayReady = {};
new MutationObserver((changes) => {
  for (const change of changes) {
    const route = change.target.getAttribute("data-ready");
    if (route !== null && !(route in window.__m2mpayReady)) {
      window.__m2mpayReady[route] = performance.now();
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-ready"] });
"""


@dataclass
class PageLoad:
    """One cold load of a page: its time to interactive and the scripts it fetched."""

    tti_ms: float
    script_bytes: dict[str, bytes]  # by URL


@dataclass
class UiRig:
    """What a measure has: the node, the browser, and the pages' cold loads (made once,
    shared by the measures that read them)."""

    node: NodeProcess
    browser: Browser
    runs: int
    say: Callable[[str], None]
    explorer_blocks: int = EXPLORER_BLOCKS
    _loads: dict[str, list[PageLoad]] = field(default_factory=dict)

    async def loads(self) -> dict[str, list[PageLoad]]:
        """`runs` cold loads of every page in `PAGES`, by page name."""
        if not self._loads:
            for name, route in PAGES.items():
                self.say(f"loading {name} ({route}) {self.runs} times, cold")
                self._loads[name] = [await self.load(route) for _ in range(self.runs)]
        return self._loads

    async def context(self, route: str) -> BrowserContext:
        """A fresh browser context, logged in when `route` needs the token."""
        context = await self.browser.new_context()
        if route in _NEEDS_TOKEN:
            token = json.dumps(str(self.node.ready["api_token"]))
            await context.add_init_script(
                f"sessionStorage.setItem({json.dumps(_TOKEN_KEY)}, {token});"
            )
        return context

    async def load(self, route: str) -> PageLoad:
        """`route` opened in a fresh context, until its main content is ready."""
        context = await self.context(route)
        try:
            await context.add_init_script(_WATCH_READY)
            page = await context.new_page()
            # Every script the page asked for: the entry, the chunks it imports, and those
            # the page fetched by import() (its own, uPlot's): all before it says ready.
            requested: list[Any] = []

            def ask(request: Any) -> None:
                if request.resource_type == "script":
                    requested.append(request)

            page.on("request", ask)
            await page.goto(f"{self.node.url}/app/#{route}")
            ready = f'main[data-ready="{route}"]'
            await page.wait_for_selector(ready, timeout=_TIMEOUT_MS)
            tti = await page.evaluate("(route) => window.__m2mpayReady[route]", route)
            scripts: dict[str, bytes] = {}
            for request in requested:
                response = await request.response()
                if response is not None:
                    scripts[request.url] = await response.body()
            return PageLoad(round(float(tti), 1), scripts)
        finally:
            await context.close()


async def tti_ms(rig: UiRig) -> dict[str, float]:
    loads = await rig.loads()
    return {
        name: round(statistics.median(load.tti_ms for load in runs), 1)
        for name, runs in loads.items()
    }


async def js_gzip_kb(rig: UiRig) -> dict[str, float]:
    loads = await rig.loads()
    return {name: _gzip_kb(runs[0]) for name, runs in loads.items()}


def _gzip_kb(load: PageLoad) -> float:
    """The scripts of one load, each gzipped as a server would send it, in KiB."""
    return round(sum(len(gzip.compress(body)) for body in load.script_bytes.values()) / 1024, 1)


async def dashboard_latency_ms(rig: UiRig) -> float:
    """The median of `max(runs, 5)` payments (a token unit each) from a payment asked of
    the node's API to its point drawn in the dashboard's payments chart."""
    return await dashboard_latency(rig, max(rig.runs, 5))


async def explorer_page_ms(rig: UiRig) -> float:
    """The blocks page on a chain grown to `rig.explorer_blocks` blocks: the median of
    `runs` cold loads, navigation to data-ready (the page's 25 blocks on screen)."""
    rpc_url = (rig.node.data_dir / _RPC_FILE).read_text().strip()
    rig.say(f"mining up to {rig.explorer_blocks:,} blocks on the node's chain")
    head = await grow_chain(rpc_url, rig.explorer_blocks)
    rig.say(f"loading the explorer's blocks page at block {head:,} {rig.runs} times, cold")
    loads = [await rig.load(PAGES["explorer"]) for _ in range(rig.runs)]
    return round(statistics.median(load.tti_ms for load in loads), 1)


MEASURES: Final[dict[str, Callable[[UiRig], Awaitable[Any]]]] = {
    "tti_ms": tti_ms,
    "js_gzip_kb": js_gzip_kb,
    "dashboard_latency_ms": dashboard_latency_ms,
    "explorer_page_ms": explorer_page_ms,  # last: it grows the chain the others read
}


def _absent(chromium: Path) -> str | None:
    if not chromium.is_file():
        return f"no Chromium at {chromium} (make system-deps installs Debian's)"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (it comes with m2mpay's dev extra)"
    return None


def _not_measured(why: str) -> dict[str, Any]:
    return {**dict.fromkeys(MEASURES), "why_not": why}


async def measure_ui(
    *,
    runs: int = 5,
    explorer_blocks: int = EXPLORER_BLOCKS,
    chromium: Path = CHROMIUM,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = narrator(progress)
    why_not = _absent(chromium)
    if why_not is not None:
        return _not_measured(why_not)
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="m2mpay-bench-ui-") as tmp:
        node = NodeProcess(Path(tmp) / "node", "--no-mqtt")
        say("starting a node daemon (embedded chain, no MQTT)")
        node.start()
        try:
            async with httpx.AsyncClient() as http:
                if (await http.get(f"{node.url}/app/")).status_code != 200:
                    return _not_measured("the web app is not built (make builds it)")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(chromium), headless=True
                )
                try:
                    rig = UiRig(node, browser, runs, say, explorer_blocks)
                    result: dict[str, Any] = {"runs": runs, "explorer_blocks": explorer_blocks}
                    for name, measure in MEASURES.items():
                        result[name] = await measure(rig)
                    return result
                finally:
                    await browser.close()
        finally:
            node.stop()
