"""The web reader page in headless Chromium (Debian's, driven by Playwright), reaching
nothing but the test's own server: a stream the Python writer wrote, opened from the QR
code's URL (the key in the fragment), from an uploaded image of the code and from the
camera (Chromium's fake capture device playing a video made from the code's PNG), is
verified and its records shown; each tampered stream shows its named problem and never
a verified state. Screenshots are kept in the test's tmp_path (their paths printed)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from m2mpay.asgi import AsgiServer
from m2mpay.provenance import (
    AccessMode,
    MemoryStreamStore,
    MeterRecord,
    MeterUnit,
    NoteRecord,
    PaymentRecord,
    PriceRecord,
    ProvenanceStream,
    SessionRecord,
    StreamRecord,
    StreamWriter,
)
from m2mpay.provenance.qr import StreamCode, qr_png
from m2mpay.provenance.reader_app import READER_ASSETS, reader_mount, stream_file_path
from m2mpay.provenance.stream_file import stream_file_lines
from tests.provenance.qr_kit import png_grey
from tests.provenance.streams_kit import AUTHOR, OTHER, TOKEN, Clock, forge

CHROMIUM = "/usr/bin/chromium"  # the Makefile's system-deps installs it; never a download
CHANNEL = bytes([9]) * 32
SETTLED = '#status[data-state="verified"], #status[data-state="failed"]'


def _session_records() -> list[StreamRecord]:
    made: list[StreamRecord] = [
        SessionRecord(
            bytes([1]) * 32, CHANNEL, 31337, TOKEN, AUTHOR.address, OTHER.address, MeterUnit.WH
        ),
        PriceRecord(MeterUnit.WH, 10**15, TOKEN),
    ]
    for i in range(3):
        made.append(MeterRecord(MeterUnit.WH, 250 + i, 250 * (i + 1) + i, 60_000))
        made.append(
            PaymentRecord(CHANNEL, OTHER.address, 10**17 * (i + 1), 10**17 * (i + 1) * (i + 2) // 2)
        )
    made.append(NoteRecord("the turbine's output, hour by hour"))
    return made


@dataclass
class Served:
    url: str
    stream: ProvenanceStream
    upstream: ProvenanceStream
    key: bytes
    files: dict[str, bytes]

    @property
    def reader(self) -> str:
        return f"{self.url}/provenance/reader/"

    def code(self, src: str | None = None, *, key: bytes | None = None) -> StreamCode:
        src = src or f"{self.url}/provenance{stream_file_path(self.stream.stream_id)}"
        return StreamCode(self.stream.stream_id, src, key)

    def tampered(self, name: str, key: bytes | None) -> str:
        """The reader's URL for the tampered file `name`."""
        return self.code(f"{self.url}/tampered/{name}.jsonl", key=key).url(self.reader)


def _file(stream: ProvenanceStream, messages: list[bytes], count: int | None = None) -> bytes:
    lines = list(stream_file_lines(stream.root, list(stream.messages)))
    header = lines[0]
    if count is not None:
        header = header.replace(
            f'"count":{len(stream.messages)}'.encode(), f'"count":{count}'.encode()
        )
    return header + b"".join(b'{"message":"0x' + m.hex().encode() + b'"}\n' for m in messages)


def _tamperings(stream: ProvenanceStream, key: bytes) -> dict[str, bytes]:
    raw = [m.raw for m in stream.messages]
    flipped = bytearray(raw[3])
    flipped[150] ^= 0x01
    last = stream.messages[-1]
    fork = forge(
        AUTHOR,
        stream.stream_id,
        2,
        stream.messages[1].hash,
        key=key,
        timestamp_ms=stream.messages[1].timestamp_ms,
    ).raw
    by_other = forge(
        OTHER, stream.stream_id, len(raw), last.hash, key=key, timestamp_ms=last.timestamp_ms
    ).raw
    whole = _file(stream, raw)
    return {
        "flipped": _file(stream, [*raw[:3], bytes(flipped), *raw[4:]]),
        "reordered": _file(stream, [*raw[:2], raw[3], raw[2], *raw[4:]]),
        "dropped": _file(stream, [*raw[:2], *raw[3:]], count=len(raw) - 1),
        "replayed": _file(stream, [*raw, raw[1]], count=len(raw) + 1),
        "inserted": _file(stream, [*raw[:2], fork, *raw[2:]], count=len(raw) + 1),
        "other-signer": _file(stream, [*raw, by_other], count=len(raw) + 1),
        "truncated": _file(stream, raw[:4]),
        "cut-short": whole[:-40],
        "whole": whole,
    }


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[Served]:
    assert (READER_ASSETS / "reader.js").is_file(), "run make test: it builds the reader's assets"
    async with MemoryStreamStore() as store:
        upstream_writer = await StreamWriter.create(
            store, OTHER, purpose="turbine", access=AccessMode.PUBLIC, now_ms=Clock()
        )
        await upstream_writer.append_many([MeterRecord(MeterUnit.WH, 900, 900, 60_000)])
        writer = await StreamWriter.create(
            store,
            AUTHOR,
            purpose="charger session",
            links=[upstream_writer.stream_id],
            now_ms=Clock(),
        )
        await writer.append_many(_session_records())
        stream = await ProvenanceStream.load(store, writer.stream_id)
        upstream = await ProvenanceStream.load(store, upstream_writer.stream_id)
        files = _tamperings(stream, writer.key())

        async def tampered(request: Request) -> Response:
            name = request.path_params["name"].removesuffix(".jsonl")
            return Response(files[name], media_type="application/x-ndjson")

        app = Starlette(routes=[reader_mount(store), HttpRoute("/tampered/{name}", tampered)])
        server = AsgiServer(app, port=0, name="reader test server")
        url = await server.start()
        try:
            yield Served(url, stream, upstream, writer.key(), files)
        finally:
            await server.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def _offline_page(browser: Browser, served: Served, elsewhere: list[str]) -> Page:
    """A page whose every request not to the test's server is aborted and listed, as is
    every script error and console error (a blocked resource, a policy refused)."""
    context = await browser.new_context(viewport={"width": 1100, "height": 1400})

    async def only_the_server(route: Route) -> None:
        if route.request.url.startswith(f"{served.url}/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_server)
    page = await context.new_page()
    page.on("pageerror", lambda error: elsewhere.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            elsewhere.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    return page


@pytest.fixture
async def page(browser: Browser, served: Served) -> AsyncIterator[Page]:
    elsewhere: list[str] = []
    opened = await _offline_page(browser, served, elsewhere)
    try:
        yield opened
    finally:
        await opened.context.close()
    assert elsewhere == []


async def _settled(page: Page) -> str:
    status = page.locator("#status")
    await page.wait_for_selector(SETTLED, timeout=30_000)
    state = await status.get_attribute("data-state")
    assert state is not None
    return state


async def _shows_the_verified_stream(page: Page, served: Served) -> None:
    assert await _settled(page) == "verified", await page.locator("#status").inner_text()
    assert await page.locator("#status .tick").count() == 1
    assert await page.locator("#paid-address").inner_text() == str(AUTHOR.address)
    assert await page.locator("#message-count").inner_text() == str(len(served.stream.messages))
    rows = page.locator("#records tr")
    assert await rows.count() == len(served.stream.messages)
    kinds = [await rows.nth(i).get_attribute("data-kind") for i in range(await rows.count())]
    assert kinds == ["session", "price", *["meter reading", "payment"] * 3, "note"]
    assert "250 Wh over 60 s" in await rows.nth(2).inner_text()
    assert str(OTHER.address) in await rows.nth(3).inner_text()
    assert await page.locator("#totals").inner_text() == (
        "Metered: 753 Wh; paid: 600000000000000000 (in the token's smallest units)."
    )
    # The key stayed in the fragment: the requests the page made never carried it.
    assert served.key.hex() not in page.url.split("#")[0]


async def test_a_stream_from_the_qr_url_verifies_and_shows_its_records(
    page: Page, served: Served, tmp_path: Path
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(served.code(key=served.key).url(served.reader))
    await _shows_the_verified_stream(page, served)
    assert await page.locator("#stream-id").input_value() == served.stream.stream_id.hex()
    assert await page.locator("#key").input_value() == served.key.hex()
    assert not any(served.key.hex() in url for url in requested)
    screenshot = tmp_path / "reader-verified.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot of the reader, verified: {screenshot}")
    assert screenshot.stat().st_size > 10_000

    # The upstream stream is a link; following it verifies the turbine's stream.
    link = page.locator("#upstream a")
    assert await link.inner_text() == "0x" + served.upstream.stream_id.hex()
    await link.click()
    # Waits through selectors, not page.wait_for_function: the page's Content-Security-Policy
    # forbids the eval that a polled function needs, and it polls when not true at once.
    await page.locator("#paid-address", has_text=str(OTHER.address)).wait_for(timeout=30_000)
    assert await page.locator("#paid-address").inner_text() == str(OTHER.address)
    assert await _settled(page) == "verified"
    assert await page.locator("#records tr").count() == len(served.upstream.messages)


@pytest.mark.parametrize(
    ("name", "with_key", "code", "position"),
    [
        ("flipped", True, "bad_signature", 3),
        ("reordered", True, "reordered", 2),
        ("dropped", True, "gap", 2),
        ("replayed", True, "duplicate", 9),
        ("inserted", True, "inserted", 3),
        ("other-signer", True, "wrong_author", 9),
        ("truncated", True, "truncated", 4),
        ("whole", False, "missing_key", 0),
    ],
)
async def test_a_tampered_stream_names_its_problem_and_never_shows_verified(
    page: Page, served: Served, name: str, with_key: bool, code: str, position: int, tmp_path: Path
) -> None:
    await page.goto(served.tampered(name, served.key if with_key else None))
    await _never_verified(page, code, position)
    await page.screenshot(path=str(tmp_path / f"reader-{name}.png"), full_page=True)


async def _never_verified(page: Page, code: str, position: int | None) -> None:
    assert await _settled(page) == "failed"
    assert await page.locator("#problem-code").inner_text() == code
    if position is None:
        assert await page.locator("#problem-position").count() == 0
    else:
        assert await page.locator("#problem-position").inner_text() == str(position)
    assert await page.locator(".tick").count() == 0
    assert not await page.locator("#totals").is_visible()  # no sums over part of a stream
    caption = page.locator("#records-caption")
    if await caption.is_visible():
        assert "does NOT verify" in await caption.inner_text()


async def test_a_wrong_key_and_a_file_cut_short_are_named(page: Page, served: Served) -> None:
    await page.goto(served.tampered("whole", bytes(32)))
    await _never_verified(page, "wrong_key", 0)
    await page.goto(served.tampered("whole", served.key[:16]))  # a code cut short
    await _never_verified(page, "wrong_key", 0)
    await page.goto(served.tampered("cut-short", served.key))
    await _never_verified(page, "truncated", None)


async def test_a_code_of_another_format_is_named_qr_format(page: Page, served: Served) -> None:
    await page.goto(served.reader + "#m2mpay-stream=2&id=00")
    await _never_verified(page, "qr_format", None)
    await page.goto(served.reader + "#WIFI:S:cafe;;")
    await _never_verified(page, "qr_format", None)


async def test_an_uploaded_image_of_the_qr_code_verifies(
    page: Page, served: Served, tmp_path: Path
) -> None:
    png = tmp_path / "code.png"
    png.write_bytes(qr_png(served.code(key=served.key).url(served.reader)))
    await page.goto(served.reader)
    assert await page.locator("#status").get_attribute("data-state") == "idle"
    await page.locator("#upload").set_input_files(str(png))
    await _shows_the_verified_stream(page, served)
    assert "#m2mpay-stream=1&" in page.url


async def test_the_fields_filled_by_hand_from_the_keyboard_verify(
    page: Page, served: Served
) -> None:
    code = served.code(key=served.key)
    await page.goto(served.reader)
    await page.get_by_label("Stream id").fill(code.stream_id.hex())
    await page.get_by_label("Where to fetch it").fill(code.src)
    await page.get_by_label("Key").fill(served.key.hex())
    await page.get_by_label("Key").press("Enter")  # the form submits from the keyboard
    await _shows_the_verified_stream(page, served)
    # Another stream's id than the file's: the root is named wrong_stream.
    await page.get_by_label("Stream id").fill(served.upstream.stream_id.hex())
    await page.get_by_role("button", name="Fetch and verify").click()
    await _never_verified(page, "wrong_stream", None)


async def test_an_upload_that_is_no_image_or_holds_no_code_is_said(
    page: Page, served: Served, tmp_path: Path
) -> None:
    await page.goto(served.reader)
    text = tmp_path / "not-an-image.png"
    text.write_text("hello")
    await page.locator("#upload").set_input_files(str(text))
    assert await _settled(page) == "failed"
    assert "not an image" in await page.locator("#status").inner_text()
    blank = tmp_path / "blank.png"
    blank.write_bytes(_blank_png())
    await page.locator("#upload").set_input_files(str(blank))
    await page.locator("#status", has_text="No QR code").wait_for(timeout=30_000)
    assert await page.locator(".tick").count() == 0


def _blank_png() -> bytes:
    """A white 64x64 PNG (1-bit greyscale), holding no code."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff" * 8 for _ in range(64))
    header = struct.pack(">IIBBBBB", 64, 64, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _y4m_of(png: bytes, path: Path, width: int = 640, height: int = 480) -> None:
    """A short Y4M video (what Chromium's fake camera plays) of the code centred on white."""
    code_width, code_height, rows = png_grey(png)
    left, top = (width - code_width) // 2, (height - code_height) // 2
    luma = bytearray(b"\xff" * (width * height))
    for y, row in enumerate(rows):
        start = (top + y) * width + left
        luma[start : start + code_width] = row
    chroma = b"\x80" * (width // 2 * height // 2)
    frame = b"FRAME\n" + bytes(luma) + chroma + chroma
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * 5)


async def test_the_camera_reads_the_qr_code_and_the_stream_verifies(
    served: Served, tmp_path: Path
) -> None:
    video = tmp_path / "code.y4m"
    _y4m_of(qr_png(served.code(key=served.key).url(served.reader), scale=6), video)
    elsewhere: list[str] = []
    async with async_playwright() as playwright:
        camera_browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        try:
            page = await _offline_page(camera_browser, served, elsewhere)
            await page.context.grant_permissions(["camera"], origin=served.url)
            await page.goto(served.reader)
            await page.locator("#scan").focus()
            await page.keyboard.press("Enter")  # the scan button works from the keyboard
            await _shows_the_verified_stream(page, served)
            screenshot = tmp_path / "reader-camera.png"
            await page.screenshot(path=str(screenshot), full_page=True)
            print(f"screenshot of the reader after the camera scan: {screenshot}")
        finally:
            await camera_browser.close()
    assert elsewhere == []
