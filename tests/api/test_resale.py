"""Wind to car through the node API, in process: a charger resells a wind turbine's
offer with a commission per unit, a car buys from the charger's storefront, and the
charger's node reconciles each sale with its purchase (units and money), all through
the Python SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from m2mpay.client import OfferView, ResaleView
from m2mpay.devices.simulated import EnergyMeter, PowerLine, RelayMeter, Simulation, wind_power
from m2mpay.errors import ApiInvalidInput, ApiNotFound, DeviceError
from m2mpay.market.offer_book import OfferBook
from m2mpay.stream.supply import SupplyFactory
from tests.api.conftest import UNIT, Api, ApiFactory

PRICE = 10**15  # the turbine's, per Wh
COMMISSION = 2 * 10**14  # the charger's, per Wh


def _device(name: str, make: SupplyFactory) -> Callable[[str, str], SupplyFactory]:
    """A node's device bus with one device service, `name`."""

    def supplies(device: str, service: str) -> SupplyFactory:
        if f"{device}/{service}" != name:
            raise DeviceError("unknown_device", f"no device {device}/{service}")
        return make

    return supplies


async def _value_chain(make_api: ApiFactory, simulation: Simulation) -> tuple[Api, Api, Api]:
    line = PowerLine()  # the cable from the turbine's meter to the charger's
    turbine = await make_api(
        1,
        supplies=_device(
            "turbine/energy",
            lambda _: EnergyMeter(simulation, wind_power(40_000, gust_period_s=20), line=line),
        ),
    )
    charger = await make_api(2, supplies=_device("relay/energy", lambda _: RelayMeter(line)))
    car = await make_api(3)
    return turbine, charger, car


async def _wind_offer(turbine: Api) -> OfferView:
    return await turbine.client.publish_offer(
        kind="energy", unit="Wh", price=PRICE, window=8, batch=2, device="turbine/energy"
    )


async def _reconciled(charger: Api, timeout: float = 30) -> ResaleView:
    """The charger's resale once the sale and its purchase have both stopped."""
    async with asyncio.timeout(timeout):
        while True:
            [resale] = await charger.client.resales()
            phases = [(r.sale_phase, r.purchase_phase) for r in resale.reconciliations]
            if phases == [("stopped", "stopped")]:
                return resale
            await asyncio.sleep(0.02)


async def test_the_charger_resells_wind_power_and_reconciles_through_the_api(
    make_api: ApiFactory, simulation: Simulation
) -> None:
    turbine, charger, car = await _value_chain(make_api, simulation)
    await _wind_offer(turbine)
    [wind] = await turbine.client.offers()
    assert not charger.node.is_connected(turbine.address)
    created = await charger.client.publish_resale(
        wind,
        commission=COMMISSION,
        device="relay/energy",
        endpoint=turbine.node.endpoint,
        deposit=UNIT,  # no channel to the turbine yet: the first purchase opens one
    )
    assert created.source_offer_id == wind.offer_id
    assert created.source_seller == turbine.address
    assert created.commission == COMMISSION
    assert created.reconciliations == ()
    assert created.offer.seller == charger.address
    assert created.offer.price == PRICE + COMMISSION
    assert (created.offer.window, created.offer.batch) == (wind.window, wind.batch)

    # The resale is an offer like any other in the charger's public storefront.
    [offer] = await charger.client.offers()
    assert offer == created.offer
    sale = await car.client.start_session(
        offer, endpoint=charger.node.endpoint, deposit=UNIT, target_units=40
    )
    bought = await car.sessions.wait_stopped(bytes.fromhex(sale.session_id[2:]), timeout=60)
    assert bought.stop_reason == "target reached"

    resale = await _reconciled(charger)
    [report] = resale.reconciliations
    assert report.sale_id == sale.session_id
    assert report.balanced
    assert report.units_bought == report.units_sold == 40
    assert report.paid_upstream == 40 * PRICE
    assert report.received_downstream == 40 * (PRICE + COMMISSION)
    assert report.margin == report.commission * 40 == COMMISSION * 40
    # Both sides of each session agree with the reconciliation.
    purchase = await turbine.client.session(report.purchase_id)
    assert (purchase.role, purchase.forward.units, purchase.forward.paid) == (
        "seller",
        40,
        40 * PRICE,
    )
    sold = await car.client.session(report.sale_id)
    assert (sold.forward.units, sold.forward.paid) == (40, 40 * (PRICE + COMMISSION))
    # The raw answer: amounts as integer strings.
    raw = (await charger.http.get("/v1/resales")).json()["resales"][0]
    assert raw["commission"] == str(COMMISSION)
    assert raw["reconciliations"][0]["paid_upstream"] == str(40 * PRICE)


async def test_a_resale_is_checked_before_it_is_published(
    make_api: ApiFactory, simulation: Simulation
) -> None:
    turbine, charger, _ = await _value_chain(make_api, simulation)
    wind = await _wind_offer(turbine)
    with pytest.raises(ApiNotFound) as unknown:
        await charger.client.publish_resale(wind, commission=COMMISSION, device="ghost/energy")
    assert unknown.value.field == "device"
    with pytest.raises(ApiInvalidInput) as malformed:
        await charger.client.publish_resale(wind, commission=COMMISSION, device="relay")
    assert malformed.value.field == "device"
    with pytest.raises(ApiInvalidInput) as too_big:
        await charger.client.publish_resale(
            wind, commission=COMMISSION, device="relay/energy", batch=9
        )
    assert too_big.value.field == "batch"
    own_offer = await charger.client.publish_offer(
        kind="energy", unit="Wh", price=PRICE, window=8, device="relay/energy"
    )
    with pytest.raises(ApiInvalidInput) as own:
        await charger.client.publish_resale(own_offer, commission=1, device="relay/energy")
    assert own.value.field == "source"
    refused = await charger.http.post(
        "/v1/resales", json={"source": {}, "commission": "1", "device": "relay/energy"}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["field"].startswith("source.")
    assert await charger.client.resales() == []
    assert await turbine.client.resales() == []


async def test_a_resale_is_kept_in_the_offer_book_and_published_again_with_its_sales(
    make_api: ApiFactory, simulation: Simulation, tmp_path: Path
) -> None:
    turbine, charger, car = await _value_chain(make_api, simulation)
    wind = await _wind_offer(turbine)
    charger.gateway.offer_book = OfferBook(tmp_path / "offers.json")
    created = await charger.client.publish_resale(
        wind,
        commission=COMMISSION,
        device="relay/energy",
        endpoint=turbine.node.endpoint,
        deposit=UNIT,
    )
    first = await car.client.start_session(
        created.offer, endpoint=charger.node.endpoint, deposit=UNIT, target_units=20
    )
    await car.sessions.wait_stopped(bytes.fromhex(first.session_id[2:]), timeout=60)
    await _reconciled(charger)

    # The gateway goes as a process would (the resale relays no more, its offer is
    # gone), and comes back from what its data dir holds.
    await charger.gateway.close()
    charger.sessions.withdraw(bytes.fromhex(created.offer.offer_id[2:]))
    assert await charger.client.resales() == []
    book = charger.gateway.offer_book = OfferBook(tmp_path / "offers.json")
    charger.gateway.publish_saved(book.load())

    [again] = await charger.client.resales()
    assert again.offer == created.offer
    assert (again.source_offer_id, again.commission) == (wind.offer_id, COMMISSION)
    [report] = again.reconciliations
    assert report.sale_id == first.session_id
    assert report.balanced
    # It sells on under the same offer, each sale with its purchase.
    second = await car.client.start_session(created.offer, target_units=10)
    await car.sessions.wait_stopped(bytes.fromhex(second.session_id[2:]), timeout=60)
    async with asyncio.timeout(30):
        while True:
            [resale] = await charger.client.resales()
            if [r.purchase_phase for r in resale.reconciliations] == ["stopped", "stopped"]:
                break
            await asyncio.sleep(0.02)
    assert [r.sale_id for r in resale.reconciliations] == [first.session_id, second.session_id]
    assert all(r.balanced for r in resale.reconciliations)
    assert resale.reconciliations[1].units_sold == 10
