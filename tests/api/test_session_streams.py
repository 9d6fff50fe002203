"""One provenance stream per session sold, in process over real nodes on the embedded
chain: the turbine and the charger each write the stream of their sale, the car learns
both over the peer links (its key wrapped for it), and follows the charger's stream's
link back to the turbine's, whose author is the address the charger paid."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from m2mpay.crypto import Address
from m2mpay.daemon.session_streams import StreamKeeper, meter_unit
from m2mpay.devices.simulated import Simulation
from m2mpay.market.offer_book import save_json
from m2mpay.provenance import (
    MemoryStreamStore,
    MeterRecord,
    MeterUnit,
    PaymentRecord,
    PriceRecord,
    ProvenanceStream,
    ReceiptRecord,
    SessionRecord,
    StreamRecord,
)
from m2mpay.provenance.session_chain import BoughtStreams, check_value_chain
from m2mpay.provenance.session_streams import (
    SessionStreams,
    SessionStreamsConfig,
    StreamAsk,
    StreamGiven,
)
from m2mpay.provenance.stream_file import read_stream_file, stream_file_lines
from m2mpay.stream import FlowTotals, ServiceKind, SessionInfo, new_offer
from m2mpay.stream.state import SessionPhase
from tests.api.conftest import UNIT, Api, ApiFactory
from tests.api.test_resale import COMMISSION, PRICE, _reconciled, _value_chain, _wind_offer

CONFIG = SessionStreamsConfig(meter_interval_s=0.05, link_wait_s=10.0)


@dataclass
class Kept:
    api: Api
    store: MemoryStreamStore
    keeper: StreamKeeper


@pytest.fixture
async def keep(tmp_path: Path) -> AsyncIterator[list[Kept]]:
    made: list[Kept] = []
    yield made
    for kept in made:
        await kept.keeper.stop()
        await kept.store.close()


async def _keeper(api: Api, made: list[Kept], tmp_path: Path) -> Kept:
    store = MemoryStreamStore()
    await store.open()
    keeper = StreamKeeper(
        api.sessions,
        SessionStreams(store, api.node.key),
        BoughtStreams(tmp_path / f"bought-{api.address}.json", save_json),
        url_of=lambda stream_id: f"http://{api.address}.test/provenance/0x{stream_id.hex()}",
        resold=lambda offer_id: offer_id in api.gateway.resales,
        config=CONFIG,
    )
    keeper.start()
    kept = Kept(api, store, keeper)
    made.append(kept)
    return kept


def _sold_as_recorded(
    records: list[StreamRecord], session_id: bytes, payee: Api, buyer: Api, price: int
) -> None:
    """A sale of 40 Wh at `price`, as its stream records it."""
    first, priced = records[0], records[1]
    assert isinstance(first, SessionRecord)
    assert (first.session, first.pay_to, first.buyer) == (session_id, payee.address, buyer.address)
    assert isinstance(priced, PriceRecord)
    assert priced.price == price
    meters = [r for r in records if isinstance(r, MeterRecord)]
    assert sum(m.delta for m in meters) == meters[-1].total == 40
    payments = [r for r in records if isinstance(r, PaymentRecord)]
    assert sum(p.amount for p in payments) == 40 * price
    receipt = records[-1]
    assert isinstance(receipt, ReceiptRecord)
    assert receipt.signers() == (payee.address, buyer.address)  # countersigned
    assert receipt.forward.units == 40


async def test_each_hop_writes_its_sale_and_the_car_follows_the_links_to_the_turbine(
    make_api: ApiFactory, simulation: Simulation, keep: list[Kept], tmp_path: Path
) -> None:
    turbine, charger, car = await _value_chain(make_api, simulation)
    at_turbine, at_charger, at_car = [
        await _keeper(a, keep, tmp_path) for a in (turbine, charger, car)
    ]
    wind = await _wind_offer(turbine)
    await charger.client.publish_resale(
        wind,
        commission=COMMISSION,
        device="relay/energy",
        endpoint=turbine.node.endpoint,
        deposit=UNIT,
    )
    [offer] = await charger.client.offers()
    sale = await car.client.start_session(
        offer, endpoint=charger.node.endpoint, deposit=UNIT, target_units=40
    )
    sale_id = bytes.fromhex(sale.session_id[2:])
    await car.sessions.wait_stopped(sale_id, timeout=60)
    [report] = (await _reconciled(charger)).reconciliations
    purchase_id = bytes.fromhex(report.purchase_id[2:])
    async with asyncio.timeout(10):  # each seller's last records, written in the background
        await at_charger.keeper.streams.wait_ended(sale_id)
        await at_turbine.keeper.streams.wait_ended(purchase_id)

    # The car learned both streams: the charger's and, through it, the turbine's.
    down, up = await at_car.keeper.wait_known(sale_id, timeout=10)
    assert down.root.author == charger.address
    assert down.root.links == (up.stream_id,)
    assert up.root.author == turbine.address  # the address the charger paid
    streams = {down.stream_id: at_charger.store, up.stream_id: at_turbine.store}

    sold = {}
    for known in (down, up):
        stream = await ProvenanceStream.load(streams[known.stream_id], known.stream_id)
        verified = stream.verify(known.key)
        assert verified.ok, verified.problem
        sold[known.stream_id] = verified.records
    for known, session_id, payee, buyer, price in (
        (down, sale_id, charger, car, PRICE + COMMISSION),
        (up, purchase_id, turbine, charger, PRICE),
    ):
        _sold_as_recorded(sold[known.stream_id], session_id, payee, buyer, price)
    # What the car does with the files it fetches: the chain checks hop by hop.
    files = []
    for known in (down, up):
        stream = await ProvenanceStream.load(streams[known.stream_id], known.stream_id)
        lines = b"".join(stream_file_lines(stream.root, list(stream.messages)))
        files.append(read_stream_file(io.BytesIO(lines)))
    hops, problem = check_value_chain([down, up], files)
    assert problem is None
    assert [h.session.pay_to for h in hops] == [charger.address, turbine.address]
    # A file of another stream in the chain's place is named, not passed.
    _, problem = check_value_chain([down, up], [files[0], files[0]])
    assert problem is not None
    assert "another stream" in problem
    # The charger's stream of its purchase's seller is the one it linked.
    [upstream] = at_charger.keeper.known(purchase_id)
    assert upstream.stream_id == up.stream_id
    assert at_turbine.keeper.streams.failures == at_charger.keeper.streams.failures == 0

    # Only a session's parties are heard: the turbine is no party to the car's purchase.
    given = at_car.keeper.bought.get(sale_id)
    assert given is not None
    forged = StreamGiven(sale_id, given.shares[1:])
    at_car.keeper._on_message(turbine.address, forged)
    assert at_car.keeper.known(sale_id) == [down, up]
    at_charger.keeper._on_message(turbine.address, StreamAsk(sale_id, bytes(32)))
    at_charger.keeper._on_message(car.address, StreamAsk(sale_id, bytes(32)))  # low order
    assert at_charger.keeper.streams.failures == 0


@pytest.mark.parametrize(
    ("kind", "unit", "recorded"),
    [
        (ServiceKind.ENERGY, "Wh", MeterUnit.WH),
        (ServiceKind.ACTUATION, "s", MeterUnit.SECOND),
        (ServiceKind.DATA, "s", MeterUnit.SECOND),  # a feed sold by the second
        (ServiceKind.DATA, "message", MeterUnit.MESSAGE),
        (ServiceKind.ENERGY, "kWh", MeterUnit.WH),  # a unit of no record: the kind's
    ],
)
def test_a_stream_meters_in_the_offers_unit(
    kind: ServiceKind, unit: str, recorded: MeterUnit
) -> None:
    offer = new_offer(Address(bytes(20)), kind, unit, 1, Address(bytes(20)), window=1)
    none = FlowTotals(0, 0, 0)
    info = SessionInfo(
        bytes(32), offer, bytes(32), Address(bytes(20)), True, SessionPhase.ACTIVE, 1, False,
        none, none, 0, 0, "", None, None,
    )  # fmt: skip
    assert meter_unit(info) is recorded
