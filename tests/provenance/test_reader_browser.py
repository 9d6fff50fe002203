"""The web reader page in headless Chromium (Debian's, driven by Playwright), reaching
nothing but the test's own server: a stream the Python writer wrote, opened from the QR
code's URL (the key in the fragment), from an uploaded image of the code and from the
camera (Chromium's fake capture device playing a video made from the code's PNG), is
verified and its records shown, amounts in the token's smallest units, messages counted
from 1 beside their index; each tampered stream shows its named problem and never a
verified state. The stream's anchored messages show their block and transaction from the
file's proofs, the rest "not anchored yet", and a forged proof fails the file with nothing
shown anchored (reader_kit.py serves them). Screenshots are kept in the test's tmp_path
(their paths printed)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from m2mpay.provenance.qr import qr_png
from tests.provenance.qr_kit import png_grey
from tests.provenance.reader_kit import (
    ANCHOR_FORGERIES,
    ANCHORED,
    CHROMIUM,
    Served,
    never_verified,
    offline_page,
    settled,
    shows_anchors,
    shows_the_verified_stream,
)
from tests.provenance.streams_kit import OTHER


@pytest.fixture
async def page(browser: Browser, served: Served) -> AsyncIterator[Page]:
    elsewhere: list[str] = []
    opened = await offline_page(browser, served.url, elsewhere)
    try:
        yield opened
    finally:
        await opened.context.close()
    assert elsewhere == []


async def test_a_stream_from_the_qr_url_verifies_and_shows_its_records(
    page: Page, served: Served, tmp_path: Path
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(served.code(key=served.key).url(served.reader))
    await shows_the_verified_stream(page, served)
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
    assert await settled(page) == "verified"
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
    await never_verified(page, code, position)
    await page.screenshot(path=str(tmp_path / f"reader-{name}.png"), full_page=True)


async def test_a_stream_without_anchors_verifies_and_says_not_anchored_yet(
    page: Page, served: Served
) -> None:
    await page.goto(served.tampered("whole", served.key))  # a version 1 file: no proofs
    assert await settled(page) == "verified"
    await shows_anchors(page, served, 0)
    await page.goto(served.tampered("anchored", served.key))  # the proof, from a file
    await page.locator("#anchor-status", has_text="Anchored:").wait_for(timeout=30_000)
    await shows_anchors(page, served, ANCHORED)


@pytest.mark.parametrize(
    ("name", "position", "detail"),
    [
        ("sibling", ANCHORED - 1, "path does not lead to the root"),
        ("root", ANCHORED - 1, "path does not lead to the root"),
        ("other-stream", 0, "its head is of stream 0x"),
        ("other-head", ANCHORED - 1, f"is not the stream's message {ANCHORED} "),
        ("beyond", ANCHORED - 1, f"beyond the {ANCHORED - 1} verified"),
    ],
)
async def test_a_forged_anchor_proof_is_named_and_nothing_is_shown_anchored(
    page: Page, served: Served, name: str, position: int, detail: str, tmp_path: Path
) -> None:
    assert name in ANCHOR_FORGERIES
    await page.goto(served.tampered(f"anchor-{name}", served.key))
    await never_verified(page, "forged_proof", position)
    assert detail in await page.locator("#problem-detail").inner_text()
    assert "forged anchor proof" in await page.locator("#status").inner_text()
    assert await page.locator("#anchors").inner_text() == (
        "none shown: the file carries a forged anchor proof"
    )
    assert (
        await page.locator("#records td[data-anchor]").count()
        == await page.locator('#records td[data-anchor="unchecked"]').count()
    )
    await page.screenshot(path=str(tmp_path / f"reader-anchor-{name}.png"), full_page=True)


async def test_a_wrong_key_and_a_file_cut_short_are_named(page: Page, served: Served) -> None:
    await page.goto(served.tampered("whole", bytes(32)))
    await never_verified(page, "wrong_key", 0)
    await page.goto(served.tampered("whole", served.key[:16]))  # a code cut short
    await never_verified(page, "wrong_key", 0)
    await page.goto(served.tampered("cut-short", served.key))
    await never_verified(page, "truncated", None)


async def test_a_code_of_another_format_is_named_qr_format(page: Page, served: Served) -> None:
    await page.goto(served.reader + "#m2mpay-stream=2&id=00")
    await never_verified(page, "qr_format", None)
    await page.goto(served.reader + "#WIFI:S:cafe;;")
    await never_verified(page, "qr_format", None)


async def test_an_uploaded_image_of_the_qr_code_verifies(
    page: Page, served: Served, tmp_path: Path
) -> None:
    png = tmp_path / "code.png"
    png.write_bytes(qr_png(served.code(key=served.key).url(served.reader)))
    await page.goto(served.reader)
    assert await page.locator("#status").get_attribute("data-state") == "idle"
    await page.locator("#upload").set_input_files(str(png))
    await shows_the_verified_stream(page, served)
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
    await shows_the_verified_stream(page, served)
    # Another stream's id than the file's: the root is named wrong_stream.
    await page.get_by_label("Stream id").fill(served.upstream.stream_id.hex())
    await page.get_by_role("button", name="Fetch and verify").click()
    await never_verified(page, "wrong_stream", None)


async def test_an_upload_that_is_no_image_or_holds_no_code_is_said(
    page: Page, served: Served, tmp_path: Path
) -> None:
    await page.goto(served.reader)
    text = tmp_path / "not-an-image.png"
    text.write_text("hello")
    await page.locator("#upload").set_input_files(str(text))
    assert await settled(page) == "failed"
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
            page = await offline_page(camera_browser, served.url, elsewhere)
            await page.context.grant_permissions(["camera"], origin=served.url)
            await page.goto(served.reader)
            await page.locator("#scan").focus()
            await page.keyboard.press("Enter")  # the scan button works from the keyboard
            await shows_the_verified_stream(page, served)
            screenshot = tmp_path / "reader-camera.png"
            await page.screenshot(path=str(screenshot), full_page=True)
            print(f"screenshot of the reader after the camera scan: {screenshot}")
        finally:
            await camera_browser.close()
    assert elsewhere == []
