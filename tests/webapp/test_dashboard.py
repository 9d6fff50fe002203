"""The live dashboard in Chromium against real processes on one embedded chain: a
seller node with a lamp (the lamp's own process on the seller's device bus) and a buyer
node. A person on the buyer's dashboard reads the seller's storefront, buys ten seconds
of light; the seller's dashboard shows the lamp lit and then off, the buyer's session
chart gains points as it is paid, and both end with the ten seconds. The storefront
route the buying starts from refuses what it must; an offer in a token of six decimals is
priced, and its deposit read, in that token's unit."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from m2mpay.bench.daemons import NodeProcess
from m2mpay.client import NodeClient
from m2mpay.crypto import PrivateKey
from tests.waiting import eventually_async
from tests.webapp.app_kit import AppPage, axe_check, logged_in, open_app, screenshot

PRICE = 10**15  # a thousandth of a token a second of light
SECONDS = 10
_LONG_MS = 60_000


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dashboard") / "chain"


@pytest.fixture(scope="module")
def node(chain_dir: Path) -> Iterator[NodeProcess]:
    """The buyer (the `app` fixture opens the app on it)."""
    process = NodeProcess(chain_dir.parent / "buyer", "--no-mqtt", "--chain-dir", str(chain_dir))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def seller(chain_dir: Path, node: NodeProcess) -> Iterator[NodeProcess]:
    process = NodeProcess(chain_dir.parent / "seller", "--no-mqtt", "--chain-dir", str(chain_dir))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def lamp(seller: NodeProcess, chain_dir: Path) -> Iterator[Callable[[], str]]:
    """Starts a lamp process on the seller's bus, at real speed; answers its address."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        key = PrivateKey.generate()
        key_file = chain_dir.parent / "lamp.key"
        key_file.write_text(key.secret.hex())
        argv = [
            sys.executable, "-m", "m2mpay.devices.lamp",
            "--url", seller.url.replace("http://", "ws://") + "/v1/devices/ws",
            "--key-file", str(key_file),
            "--price", str(PRICE),
            "--asset", str(seller.ready["token_contract"]),
            "--server", str(seller.ready["address"]),
        ]  # fmt: skip
        with (chain_dir.parent / "lamp.log").open("a") as log:
            started.append(
                subprocess.Popen(
                    argv, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL
                )
            )
        return key.address.checksum

    try:
        yield start
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
async def seller_app(browser: Browser, seller: NodeProcess) -> AsyncIterator[AppPage]:
    opened = await open_app(browser, seller)
    try:
        yield opened
    finally:
        await opened.page.context.close()


async def _offer_lamp_time(seller: NodeProcess, buyer: NodeProcess, lamp: str) -> str:
    """Once the lamp has registered: the seller offers its light; both nodes funded."""
    async with (
        NodeClient(seller.url, seller.ready["api_token"]) as shop,
        NodeClient(buyer.url, buyer.ready["api_token"]) as wallet,
    ):

        async def registered() -> bool:
            return any(d.device_id == lamp for d in await shop.devices())

        await eventually_async(registered, timeout=60)
        offer = await shop.publish_offer(
            kind="actuation",
            unit="s",
            price=PRICE,
            window=2,
            leader="payer",  # it lights only once paid
            device=f"{lamp}/light",
        )
        await wallet.faucet()
        await shop.faucet()  # the seller pays the gas of its telemetry anchors
        return offer.offer_id


async def _payments_charted_in(page: Page, asset: str, symbol: str) -> None:
    """The channel's payments are charted, in a chart of their own token only."""
    payments = page.locator('[data-testid="payments-chart"]')
    await expect(payments).to_have_count(1)
    assert (await payments.get_attribute("data-asset") or "").lower() == asset.lower()
    await expect(payments).to_contain_text(f"Channel payments in {symbol}")
    assert int(await payments.locator("figure").get_attribute("data-points") or 0) >= 1


@pytest.mark.slow  # two node processes, a lamp process, ten seconds of light: ~30 s
async def test_buying_ten_seconds_of_light_shows_the_lamp_lit_then_off_and_the_chart_growing(
    app: AppPage,
    seller_app: AppPage,
    seller: NodeProcess,
    node: NodeProcess,
    lamp: Callable[[], str],
) -> None:
    # The seller's dashboard is open before the lamp joins: the lamp's row comes from
    # the event stream.
    await logged_in(seller_app, "/dashboard")
    await expect(seller_app.page.get_by_text("No device has joined")).to_be_visible()
    offer_id = await _offer_lamp_time(seller, node, lamp())
    lamp_state = seller_app.page.locator('tr:has(td:text-is("lamp")) [data-testid="lamp-state"]')
    await expect(lamp_state).to_have_attribute("data-state", "off")
    await expect(seller_app.page.locator('tr:has(td:text-is("lamp"))')).to_contain_text("online")

    await logged_in(app, "/dashboard")
    await axe_check(app.page)
    page = app.page
    await page.get_by_label("Seller node URL").fill(seller.url)
    await page.get_by_role("button", name="Read offers").click()
    await expect(page.get_by_text(f"1 offer at {seller.url}")).to_be_visible()
    await page.get_by_label("Offer").select_option(offer_id)
    await page.get_by_label("Units (seconds of light for a lamp)").fill(str(SECONDS))
    await page.get_by_label(re.compile(r"^Deposit if a channel must be opened")).fill("1")
    await axe_check(page)
    await page.get_by_role("button", name="Buy", exact=True).click()
    await expect(page.get_by_text("started: 10 s.")).to_be_visible(timeout=_LONG_MS)

    # The seller's dashboard hears the lamp switch on from the event stream, then off.
    await expect(lamp_state).to_have_attribute("data-state", "lit", timeout=_LONG_MS)
    await expect(lamp_state).to_have_text("Lit")
    await axe_check(seller_app.page)
    await screenshot(seller_app.page, "webapp-dashboard-lamp-lit")
    # The buyer's dashboard read no session at load: every point of the session's chart
    # came from a re-read on an event of the stream (a payment on its channel, its start
    # and stop).
    bought = page.locator("article[data-session]")
    await expect(bought).to_have_count(1, timeout=_LONG_MS)
    session_id = await bought.get_attribute("data-session")
    card = f'article[data-session="{session_id}"]'
    chart = page.locator(f"{card} figure.chart")
    await expect(lamp_state).to_have_attribute("data-state", "off", timeout=_LONG_MS)
    await expect(page.locator(card)).to_have_attribute("data-phase", "stopped", timeout=_LONG_MS)
    assert int(await chart.get_attribute("data-points") or 0) >= 3
    await expect(page.locator(f'{card} [data-testid="units"]')).to_have_text(f"{SECONDS} s")
    sold = seller_app.page.locator(f'article[data-session="{session_id}"]')
    await expect(sold.locator('[data-testid="units"]')).to_have_text(
        f"{SECONDS} s", timeout=_LONG_MS
    )
    # The figures shown are the nodes' own: ten seconds paid, to the last digit.
    async with NodeClient(node.url, node.ready["api_token"]) as wallet:
        view = await wallet.session(str(session_id))
    assert view.forward.units == SECONDS
    assert view.forward.paid == SECONDS * PRICE
    paid = page.locator(f"{card} dd").nth(2).locator("data")
    await expect(paid).to_have_attribute("value", str(SECONDS * PRICE))
    await expect(paid).to_have_text("0.01 M2M")  # scaled and named by the session's token
    await _payments_charted_in(page, view.asset.checksum, "M2M")  # the deployment token
    # Nothing asked again on a timer: the session list was read once, at load.
    assert app.api_calls("GET").count("GET /v1/sessions") == 1
    assert app.api_calls("POST") == ["POST /v1/storefront", "POST /v1/sessions"]
    assert app.elsewhere == []
    assert seller_app.elsewhere == []
    await axe_check(page)
    await screenshot(page, "webapp-dashboard")


async def test_the_storefront_route_reads_a_seller_and_refuses_what_it_cannot_ask(
    node: NodeProcess, seller: NodeProcess
) -> None:
    headers = {"Authorization": f"Bearer {node.ready['api_token']}"}
    async with httpx.AsyncClient(base_url=node.url, headers=headers, timeout=60) as http:
        read = await http.post("/v1/storefront", json={"seller": seller.url})
        assert read.status_code == 200, read.text
        assert read.json()["seller"] == seller.ready["address"]
        assert read.json()["same_chain"] is True
        assert read.json()["peer_endpoint"] == seller.ready["peer_endpoint"]
        for wrong in ("ftp://example.org", "http://", "not a url"):
            refused = await http.post("/v1/storefront", json={"seller": wrong})
            assert refused.status_code == 422, wrong
            assert refused.json()["error"]["field"] == "seller"
        closed = await http.post("/v1/storefront", json={"seller": "http://127.0.0.1:9"})
        assert closed.status_code == 409
        assert closed.json()["error"] == {
            "code": "seller_unreachable",
            "message": closed.json()["error"]["message"],
            "field": "seller",
        }
        anyone = await http.post(
            "/v1/storefront", json={"seller": seller.url}, headers={"Authorization": ""}
        )
        assert anyone.status_code == 401


async def test_an_offer_in_a_token_of_six_decimals_is_priced_and_paid_in_that_tokens_unit(
    app: AppPage, seller: NodeProcess, lamp: Callable[[], str]
) -> None:
    """The buying form scales an offer's price and the deposit a person types by the
    decimals of the offer's own token, not by the deployment token's 18."""
    device = lamp()
    headers = {"Authorization": f"Bearer {seller.ready['api_token']}"}
    async with httpx.AsyncClient(base_url=seller.url, headers=headers, timeout=60) as shop:

        async def registered() -> bool:
            listed = (await shop.get("/v1/devices")).json()["devices"]
            return any(d["device_id"] == device for d in listed)

        await eventually_async(registered, timeout=60)
        assert (await shop.post("/v1/wallet/faucet", json={})).status_code == 200
        made = await shop.post("/v1/tokens", json={"name": "Watt", "symbol": "WATT", "decimals": 6})
        assert made.status_code == 201, made.text
        offer = {"kind": "actuation", "unit": "s", "price": "1500000", "window": 2}
        published = await shop.post(
            "/v1/offers",
            json={**offer, "asset": made.json()["address"], "device": f"{device}/light"},
        )
        assert published.status_code == 201, published.text
        offer_id = published.json()["offer_id"]
        try:
            await _buy_form_in_watt(app, seller, offer_id)
        finally:
            await shop.delete(f"/v1/offers/{offer_id}")


async def _buy_form_in_watt(app: AppPage, seller: NodeProcess, offer_id: str) -> None:
    # The session request is held at the browser's edge: what the form computed is the
    # question here, and the nodes keep no session of it.
    asked: list[dict[str, object]] = []

    async def hold(route: Route) -> None:
        body = route.request.post_data_json
        assert isinstance(body, dict)
        asked.append(body)
        await route.fulfill(
            status=409,
            json={"error": {"code": "held", "message": "held by the test", "field": None}},
        )

    await logged_in(app, "/dashboard")
    page = app.page
    await page.route("**/v1/sessions", hold)
    await page.get_by_label("Seller node URL").fill(seller.url)
    await page.get_by_role("button", name="Read offers").click()
    offer = page.get_by_label("Offer")
    await expect(offer.locator(f'option[value="{offer_id}"]')).to_have_text(
        re.compile(r"^actuation: 1\.5 WATT per s ")
    )
    await offer.select_option(offer_id)
    await page.get_by_label("Units (seconds of light for a lamp)").fill("4")
    await page.get_by_label(re.compile(r"^Deposit if a channel must be opened")).fill("2.25")
    await page.get_by_role("button", name="Buy", exact=True).click()
    await expect(page.get_by_text("held by the test")).to_be_visible()
    [body] = asked
    assert body["deposit"] == "2250000"  # 2.25 WATT at 6 decimals
    assert body["budget"] == str(4 * 1_500_000)
    assert [e for e in app.elsewhere if "status of 409" not in e] == []  # but the held one
