"""`browser_verify_10k_ms`: the web reader verifying 10,000 messages in Chromium.

A restricted stream of 10,000 meter readings, written by `StreamWriter` into an
in-memory store, is served with the reader by `reader_mount` on a server of the
bench's own (127.0.0.1, port 0). Debian's Chromium, headless, driven by Playwright,
opens the reader's URL with the key in the fragment, as a scanned QR code does. The
page itself measures (`data-verify-ms` on its status) from the file's bytes in hand to
its verdict shown: reading the file, checking every signature and the hash chain,
decrypting and decoding every record, drawing the table. The fetch is left out (it is
the network's, not the reader's). One cold run, as a person opening the page meets it.

Where this cannot run (no Chromium, Playwright not installed, the reader's assets not
built by `make`) the measure is None and the reason is said; nothing else is skipped.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Final

from starlette.applications import Starlette

from m2mpay.asgi import AsgiServer
from m2mpay.crypto import PrivateKey
from m2mpay.provenance import AccessMode, MemoryStreamStore, MeterRecord, MeterUnit, StreamWriter
from m2mpay.provenance.qr import StreamCode
from m2mpay.provenance.reader_app import READER_ASSETS, reader_mount, stream_file_path

__all__ = ["BROWSER_MESSAGES", "CHROMIUM", "measure_browser_verify"]

CHROMIUM: Final = Path("/usr/bin/chromium")  # Debian's (make system-deps); never a download
BROWSER_MESSAGES: Final = 10_000
_AUTHOR: Final = PrivateKey(bytes(31) + b"\x43")
_SETTLED: Final = '#status[data-state="verified"], #status[data-state="failed"]'
_TIMEOUT_MS: Final = 300_000
_APPEND: Final = 1000  # records an append, so no one commit holds the whole stream


def _absent(chromium: Path) -> str | None:
    """What this machine lacks to run the measure, if anything."""
    if not chromium.is_file():
        return f"no Chromium at {chromium} (make system-deps installs Debian's)"
    if not (READER_ASSETS / "reader.js").is_file():
        return "the web reader's assets are not built (make builds them)"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (it comes with m2mpay's dev extra)"
    return None


async def measure_browser_verify(
    messages: int = BROWSER_MESSAGES, *, chromium: Path = CHROMIUM
) -> tuple[float | None, str | None]:
    """(milliseconds from the file's bytes to the reader's verdict for a stream of
    `messages`, None) or (None, why it could not be measured)."""
    why_not = _absent(chromium)
    if why_not is not None:
        return None, why_not
    from playwright.async_api import async_playwright

    async with MemoryStreamStore() as store:
        writer = await StreamWriter.create(
            store, _AUTHOR, purpose="session", access=AccessMode.RESTRICTED
        )
        for start in range(0, messages, _APPEND):
            await writer.append_many(
                [
                    MeterRecord(MeterUnit.WH, 250 + n % 17, 250 * (n + 1), 1000)
                    for n in range(start, min(messages, start + _APPEND))
                ]
            )
        server = AsgiServer(Starlette(routes=[reader_mount(store)]), port=0, name="bench reader")
        url = await server.start()
        try:
            src = f"{url}/provenance{stream_file_path(writer.stream_id)}"
            page_url = StreamCode(writer.stream_id, src, writer.key()).url(
                f"{url}/provenance/reader/"
            )
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(chromium), headless=True
                )
                try:
                    page = await browser.new_page()
                    await page.goto(page_url)
                    await page.wait_for_selector(_SETTLED, timeout=_TIMEOUT_MS)
                    status = page.locator("#status")
                    state = await status.get_attribute("data-state")
                    took = await status.get_attribute("data-verify-ms")
                    shown = await page.locator("#message-count").inner_text()
                finally:
                    await browser.close()
        finally:
            await server.stop()
    if state != "verified" or took is None or shown != str(messages):
        raise AssertionError(f"the reader did not verify the bench's stream: {state}, {shown}")
    return round(float(took), 1), None
