"""The dashboard's value chain, wind turbine → charger → car, in Chromium: the charger's
node resells the turbine's energy with a commission, the car buys 40 Wh of it, and the
charger's dashboard shows each hop's energy and money as the charger's node reconciles
them, digit for digit.

The three nodes are gateways in this process (tests/api/test_resale.py's chain, the
turbine's meter and the charger's relay sharing one simulated power line, which node
processes cannot share), the charger's served over TCP as a node serves its app."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from m2mpay.api import create_app
from m2mpay.api.fast import create_asgi
from m2mpay.asgi import AsgiServer
from m2mpay.bench.daemons import NodeProcess
from m2mpay.devices.simulated import Simulation
from tests.api.conftest import TOKEN, UNIT, ApiFactory, make_api, simulation  # noqa: F401
from tests.api.test_resale import COMMISSION, PRICE, _reconciled, _value_chain, _wind_offer
from tests.node.conftest import chain, make_node  # noqa: F401 (fixtures of make_api)
from tests.webapp.app_kit import axe_check, logged_in, open_app, screenshot

WH = 40
_NO_BUS = "console: Failed to load resource: the server responded with a status of 404 (Not Found)"


async def test_the_value_chain_shows_energy_and_money_per_hop(
    make_api: ApiFactory,  # noqa: F811 (the fixture imported above)
    simulation: Simulation,  # noqa: F811
    browser: Browser,
    tmp_path: Path,
) -> None:
    turbine, charger, car = await _value_chain(make_api, simulation)
    wind = await _wind_offer(turbine)
    await charger.client.publish_resale(
        wind,
        commission=COMMISSION,
        device="relay/energy",
        endpoint=turbine.node.endpoint,
        deposit=UNIT,
    )
    [offer] = await charger.client.offers()
    await car.client.start_session(
        offer, endpoint=charger.node.endpoint, deposit=UNIT, target_units=WH
    )
    resale = await _reconciled(charger, timeout=60)

    server = AsgiServer(
        create_asgi(charger.gateway, create_app(charger.gateway)), port=0, name="charger API"
    )
    url = await server.start()
    # The app kit knows nodes by their ready line: the charger's, as a process would say it.
    served = NodeProcess(tmp_path / "charger")
    served.ready = {"url": url, "api_token": TOKEN}
    app = await open_app(browser, served)
    try:
        await logged_in(app, "/dashboard")
        chain_cards = app.page.get_by_role("list", name=f"Resale of offer {wind.offer_id[:10]}")
        hops = chain_cards.locator("li")
        await expect(hops).to_have_count(3)
        source, middle, buyers = hops.nth(0), hops.nth(1), hops.nth(2)
        await expect(source).to_contain_text(f"{WH} Wh bought for")
        await expect(source.locator("data")).to_have_attribute("value", str(WH * PRICE))
        await expect(buyers).to_contain_text(f"{WH} Wh sold for")
        await expect(buyers.locator("data")).to_have_attribute(
            "value", str(WH * (PRICE + COMMISSION))
        )
        margin = middle.locator("data").nth(1)
        await expect(margin).to_have_attribute("value", str(WH * COMMISSION))
        await expect(middle.locator("data").nth(0)).to_have_attribute("value", str(COMMISSION))
        assert resale.reconciliations[0].margin == WH * COMMISSION
        # No device bus in this gateway: said, not failed (the browser logs the 404).
        await expect(app.page.get_by_text("No device has joined")).to_be_visible()
        assert app.elsewhere == [_NO_BUS]
        assert "GET /v1/devices" in app.api_calls("GET")
        await axe_check(app.page)
        await screenshot(app.page, "webapp-dashboard-value-chain")
    finally:
        await app.page.context.close()
        await server.stop()
