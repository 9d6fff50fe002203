"""The web app's Data, Receipts and Streams pages in Chromium, against two real `m2mpay
node` processes on one embedded chain: a seller with its own Mosquitto, whose device
publishes its live topic (Debian's `mosquitto_pub` as the device's MQTT client, with the
credentials its feed's publication answered), and a buyer.

An hour of the feed is bought by clicks on the buyer's Data page; the credentials shown
once there read the live topic with the real `mosquitto_sub` (so they work), and are in
no later answer nor in the browser's storage; the grant counts down and is extended. A
stopped session's receipt is shown and downloaded as the node's JSON. The seller's stream
of that sale, opened from its session through the app, verifies in the node's reader
until one of its records is altered in the node's store: then the reader and the node's
own check show it red."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from m2mpay.bench.daemons import NodeProcess
from tests.api.conftest import funded_channel
from tests.waiting import eventually_async
from tests.webapp.app_kit import AppPage, axe_check, logged_in, open_app, screenshot, shown

pytestmark = pytest.mark.slow

DEVICE: Final = "plug-kitchen"
PRICE_PER_HOUR: Final = 3600 * 10**12  # 10**12 a second
SETTLED: Final = '#status[data-state="verified"], #status[data-state="failed"]'


@dataclass
class Market:
    seller: NodeProcess
    buyer: NodeProcess
    feed: dict[str, Any]


def _client(node: NodeProcess) -> httpx.Client:
    token = node.ready["api_token"]
    return httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """The seller (hosting the chain, with its broker) selling a plug's feed that the
    plug publishes, and a buyer with a funded channel to it."""
    base = tmp_path_factory.mktemp("data-pages")
    chain = ["--chain-dir", str(base / "chain")]
    seller = NodeProcess(base / "seller", *chain)
    buyer = NodeProcess(base / "buyer", *chain, "--no-mqtt")
    device: subprocess.Popen[bytes] | None = None
    try:
        seller.start()
        buyer.start()
        with _client(seller) as shop, _client(buyer) as api:
            body = {"device_id": DEVICE, "price_per_hour": str(PRICE_PER_HOUR)}
            published = shop.post("/v1/feeds", json={**body, "min_seconds": 5, "max_seconds": 7200})
            assert published.status_code == 201, published.text
            funded_channel(api, seller, deposit=10**18)
        answer = published.json()
        plug = answer["device"]
        # The device: its own MQTT client, publishing a reading five times a second.
        device = subprocess.Popen(
            ["mosquitto_pub", "-h", plug["host"], "-p", str(plug["port"]),
             "-u", plug["username"], "-P", plug["password"], "-t", f"m2m/{DEVICE}/live",
             "-m", '{"watts": 42, "at_ms": 0}', "--repeat", "100000", "--repeat-delay", "0.2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        yield Market(seller, buyer, answer["feed"])
    finally:
        if device is not None:
            device.terminate()
            device.wait(timeout=30)
        buyer.stop()
        seller.stop()


@pytest.fixture
async def buyer_app(browser: Browser, market: Market) -> AsyncIterator[AppPage]:
    opened = await open_app(browser, market.buyer)
    try:
        yield opened
    finally:
        await opened.page.context.close()


@pytest.fixture
async def seller_app(browser: Browser, market: Market) -> AsyncIterator[AppPage]:
    opened = await open_app(browser, market.seller)
    try:
        yield opened
    finally:
        await opened.page.context.close()


@pytest.fixture(scope="module")
async def stopped_sale(market: Market) -> str:
    """A purchase of five seconds bought through the API (on a channel of its own) and
    stopped, its countersigned receipt in the buyer's hands: the session's id."""
    token = market.buyer.ready["api_token"]
    async with httpx.AsyncClient(
        base_url=market.buyer.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as api:
        bought = await api.post(
            "/v1/grants",
            json={"seller": market.seller.url, "feed_id": market.feed["feed_id"], "seconds": 5,
                  "deposit": str(10**17)},
        )  # fmt: skip
        assert bought.status_code == 201, bought.text
        session = str(bought.json()["grant"]["session_id"])
        await api.post(f"/v1/sessions/{session}/stop")  # it may have stopped at its 5 s

        async def countersigned() -> bool:
            view = (await api.get(f"/v1/sessions/{session}")).json()
            return bool(view["receipt"]) and bool(view["countersigned"])

        await eventually_async(countersigned, timeout=60)
    return session


def _mosquitto_sub(credentials: dict[str, str], count: int) -> subprocess.CompletedProcess[str]:
    """The real `mosquitto_sub` (MQTT 5: a refusal is said) reading `count` messages."""
    return subprocess.run(
        ["mosquitto_sub", "-V", "mqttv5", "-h", credentials["host"], "-p", credentials["port"],
         "-u", credentials["username"], "-P", credentials["password"],
         "-t", credentials["topic"], "-v", "-C", str(count), "-W", "30"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def _shown_credentials(page: Page) -> dict[str, str]:
    async def text(name: str) -> str:
        return (await page.get_by_test_id(f"credential-{name}").inner_text()).strip()

    host, _, port = (await text("broker")).rpartition(":")
    return {
        "host": host,
        "port": port,
        "topic": await text("topic"),
        "username": await text("username"),
        "password": await text("password"),
    }


async def _counts_down_and_extends(page: Page, username: str) -> None:
    """The grant bought under `username`: its paid hour counting down, then ten minutes
    more bought from its row."""
    row = page.locator(
        'table:has(caption:text("Grants bought and sold")) tr',
        has=page.locator("code", has_text=username),
    )
    await expect(row).to_contain_text("3600 s")
    left = row.locator("[data-left]")
    first = int(await left.get_attribute("data-left") or "0")
    assert 3500 < first <= 3600
    await expect(left).not_to_have_attribute("data-left", str(first))  # it counts down
    assert int(await left.get_attribute("data-left") or "0") < first
    await row.get_by_role("button", name=f"Extend the grant of {DEVICE}").click()
    await row.get_by_label("Seconds more").fill("600")
    await row.get_by_role("button", name="Extend", exact=True).click()
    await expect(row).to_contain_text("4200 s")


async def test_an_hour_bought_in_the_browser_reads_the_live_topic_with_mosquitto_sub(
    buyer_app: AppPage, market: Market
) -> None:
    page = buyer_app.page
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await logged_in(buyer_app, "/data")
    await page.get_by_label("Seller node's URL").fill(market.seller.url)
    await page.get_by_role("button", name="Show its feeds").click()
    table = page.locator(f'table:has(caption:text("Feeds of {market.seller.url}"))')
    await expect(table.locator("td").first).to_have_text(DEVICE)
    await expect(table).to_contain_text("0.0036 M2M an hour")  # 3600 × 10**12, 18 decimals
    await axe_check(page)
    await page.get_by_role("button", name=f"Buy {DEVICE} by the second").click()
    assert await page.get_by_label("Seconds").input_value() == "3600"  # an hour
    await page.get_by_role("button", name="Buy", exact=True).click()

    once = page.get_by_test_id("credentials")
    await expect(once).to_contain_text("shown once")
    await expect(once).to_contain_text("Neither this node nor this page keeps the password")
    credentials = await _shown_credentials(page)
    assert credentials["topic"] == f"m2m/{DEVICE}/live"
    assert f"{credentials['host']}:{credentials['port']}" == market.seller.ready["mqtt"]
    assert len(credentials["password"]) >= 16
    # The copy button puts the password on the clipboard, exactly.
    await page.get_by_role("button", name="Copy the password").click()
    assert await page.evaluate("navigator.clipboard.readText()") == credentials["password"]
    await axe_check(page)
    await screenshot(page, "webapp-data-credentials")

    # They work: the real mosquitto_sub reads the device's live readings with them.
    read = await asyncio.to_thread(_mosquitto_sub, credentials, 2)
    assert read.returncode == 0, read.stderr
    lines = read.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        topic, body = line.split(" ", 1)
        assert topic == f"m2m/{DEVICE}/live"
        assert json.loads(body)["watts"] == 42

    # Shown once: in no later answer, nowhere in the browser's storage.
    with _client(market.buyer) as api:
        listed = api.get("/v1/grants").text
    assert credentials["password"] not in listed
    stored = await page.evaluate(
        "JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])"
    )
    assert credentials["password"] not in stored

    await _counts_down_and_extends(page, credentials["username"])
    # The password goes when asked to.
    await page.get_by_role("button", name="Forget them").click()
    await expect(page.get_by_test_id("credentials")).to_have_count(0)
    assert credentials["password"] not in await page.content()
    assert "POST /v1/grants" in buyer_app.api_calls("POST")
    assert buyer_app.elsewhere == []
    await screenshot(page, "webapp-data")


async def test_a_receipt_is_shown_and_downloaded_as_the_nodes_json(
    buyer_app: AppPage, market: Market, stopped_sale: str, tmp_path: Path
) -> None:
    page = buyer_app.page
    await logged_in(buyer_app, "/receipts")
    await axe_check(page)
    await page.get_by_role(
        "link", name=f"Countersigned receipt of session {stopped_sale[:10]}"
    ).click()
    await shown(buyer_app, f"/receipts/{stopped_sale}")
    receipt = page.get_by_test_id("receipt")
    await expect(receipt).to_contain_text(stopped_sale)
    countersigned = page.get_by_text("Countersigned: the peer signed the same receipt.")
    await expect(countersigned).to_be_visible()
    async with page.expect_download() as started:
        await page.get_by_role("button", name="Download JSON").click()
    download = await started.value
    assert download.suggested_filename == f"receipt-{stopped_sale}.json"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    with _client(market.buyer) as api:
        answered = api.get(f"/v1/sessions/{stopped_sale}/receipt").json()
    assert json.loads(saved.read_text()) == answered
    await axe_check(page)
    await screenshot(page, "webapp-receipt")
    assert buyer_app.elsewhere == []


async def test_refusals_are_shown_at_their_field_or_in_the_forms_banner(
    buyer_app: AppPage, market: Market
) -> None:
    """A seller that does not answer, at the URL's field; too many seconds, at the seconds'
    field; a feed retired after it was listed (the node names `feed_id`, which the form
    has not), in the form's banner; nothing bought."""
    page = buyer_app.page
    await logged_in(buyer_app, "/data")
    seller_url = page.get_by_label("Seller node's URL")
    await seller_url.fill("http://127.0.0.1:1")
    await page.get_by_role("button", name="Show its feeds").click()
    await expect(seller_url).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("main .field-error")).to_contain_text("did not answer")

    with _client(market.seller) as shop:
        body = {"device_id": "meter-gone", "price_per_hour": str(PRICE_PER_HOUR)}
        gone = shop.post("/v1/feeds", json={**body, "min_seconds": 5, "max_seconds": 60})
        assert gone.status_code == 201, gone.text
        await seller_url.fill(market.seller.url)
        await page.get_by_role("button", name="Show its feeds").click()
        await page.get_by_role("button", name="Buy meter-gone by the second").click()
        seconds = page.get_by_label("Seconds")
        assert await seconds.input_value() == "60"  # an hour is more than it sells
        await seconds.fill("61")
        await page.get_by_role("button", name="Buy", exact=True).click()
        await expect(seconds).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("main .field-error")).to_contain_text("5 to 60 s")
        assert shop.delete(f"/v1/feeds/{gone.json()['feed']['feed_id']}").status_code == 204
    await seconds.fill("30")
    await page.get_by_role("button", name="Buy", exact=True).click()
    banner = page.get_by_role("form", name="Buy meter-gone").locator(".error-banner")
    await expect(banner).to_contain_text("unknown_feed")
    await expect(page.get_by_test_id("credentials")).to_have_count(0)
    await axe_check(page)
    await screenshot(page, "webapp-data-refused")
    with _client(market.buyer) as api:
        grants = api.get("/v1/grants").json()["grants"]
    assert "meter-gone" not in [g["device_id"] for g in grants]


def _tamper(store: Path, stream_id: str, index: int) -> None:
    """One byte of message `index` altered in the node's own store, as an attacker with
    the disk would."""
    # Closed, not only committed: the node's exclusive lock is taken at its start.
    with closing(sqlite3.connect(store, timeout=30)) as db, db:
        key = bytes.fromhex(stream_id.removeprefix("0x"))
        (data,) = db.execute(
            "SELECT data FROM stream_message WHERE stream = ? AND idx = ?", (key, index)
        ).fetchone()
        altered = bytearray(data)
        altered[-40] ^= 0x01  # in the signature: the message still reads, it does not verify
        db.execute(
            "UPDATE stream_message SET data = ? WHERE stream = ? AND idx = ?",
            (bytes(altered), key, index),
        )


async def _reader_state(reader: Page) -> str:
    await reader.locator(SETTLED).wait_for(timeout=30_000)
    return str(await reader.locator("#status").get_attribute("data-state"))


async def _red_once_tampered(browser: Browser, market: Market, stream_id: str) -> None:
    """A record of the stream altered in the seller's store: the reader opened from the
    app, and the node's own check, show it red."""
    # The store's lock is the running node's for its life: the record is altered while
    # the seller is down (this module's last use of it), then it serves the stream again.
    token = market.seller.ready["api_token"]  # said on the first start only
    assert market.seller.stop() == 0
    _tamper(market.seller.data_dir / "streams.db", stream_id, 1)
    market.seller.start()
    market.seller.ready["api_token"] = market.seller.ready.get("api_token") or token
    again = await open_app(browser, market.seller)
    try:
        page = again.page
        await logged_in(again, f"/streams/{stream_id}")
        async with page.context.expect_page() as opened_again:
            await page.get_by_test_id("open-reader").click()
        tampered = await opened_again.value
        assert await _reader_state(tampered) == "failed"
        red = await tampered.locator("#status").evaluate(
            "(s) => getComputedStyle(s).backgroundColor"
        )
        assert red == "rgb(253, 236, 234)"  # the reader's red
        await expect(tampered.locator("#problem-code")).not_to_be_empty()
        await screenshot(tampered, "webapp-stream-tampered-reader")
        # The node's own check says so too, in red.
        await page.get_by_role("button", name="Verify on the node").click()
        verdict = page.locator(".verdict")
        await expect(verdict).to_have_attribute("data-state", "failed")
        await expect(verdict).to_contain_text("Problem")
        assert await verdict.evaluate("(v) => getComputedStyle(v).color") == "rgb(163, 22, 26)"
        await screenshot(page, "webapp-stream-tampered")
        assert again.elsewhere == []
    finally:
        await again.page.context.close()


async def test_the_sales_stream_verifies_in_the_reader_and_shows_red_once_tampered(
    seller_app: AppPage, market: Market, stopped_sale: str, browser: Browser
) -> None:
    page = seller_app.page
    with _client(market.seller) as shop:
        [stream] = shop.get("/v1/streams", params={"session": stopped_sale}).json()["streams"]
    assert stream["count"] >= 2
    # From the seller's receipts, to the session's streams, to the stream's page.
    await logged_in(seller_app, "/receipts")
    await page.get_by_role("link", name=f"Streams of session {stopped_sale[:10]}").click()
    await shown(seller_app, "/streams")
    await axe_check(page)
    await page.get_by_role(
        "link", name=f"Stream {stream['stream_id'][:10]}…{stream['stream_id'][-6:]}"
    ).click()
    await shown(seller_app, f"/streams/{stream['stream_id']}")
    link = page.get_by_test_id("open-reader")
    url = str(await link.get_attribute("href"))
    reader_path, fragment = url.split("#", 1)
    assert reader_path == f"{market.seller.url}/provenance/reader/"
    assert "key=" in fragment  # a restricted stream: its key only after the '#'
    assert await link.get_attribute("rel") == "noopener noreferrer"
    await page.get_by_role("button", name="Verify on the node").click()
    await expect(page.locator(".verdict")).to_have_attribute("data-state", "verified")
    await axe_check(page)
    await screenshot(page, "webapp-stream")

    async with page.context.expect_page() as opened:
        await link.click()
    reader = await opened.value
    assert await _reader_state(reader) == "verified"
    assert seller_app.elsewhere == []

    await _red_once_tampered(browser, market, stream["stream_id"])
