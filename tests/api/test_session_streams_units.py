"""A lamp's sale and a feed's sale by the message write their provenance streams end to
end, as the turbine's does (tests/api/test_session_streams.py), in their own unit: real
nodes on the embedded chain, the seller's device behind its offer, the buyer learning
the stream over the peer link and verifying it with the key it was given."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from m2mpay.devices.simulated import ActuationTimer, MessageCounter, Simulation
from m2mpay.provenance import MeterRecord, MeterUnit, ProvenanceStream, ReceiptRecord
from tests.api.conftest import UNIT, ApiFactory
from tests.api.test_resale import _device
from tests.api.test_session_streams import Kept, _keeper, keep  # noqa: F401 (a fixture)

PRICE = 10**15


async def _sold(
    make_api: ApiFactory,
    keep: list[Kept],  # noqa: F811
    tmp_path: Path,
    device: str,
    supply: ActuationTimer | MessageCounter,
    kind: Literal["energy", "actuation", "data"],
    unit: str,
) -> list[MeterRecord]:
    """The meter readings of a sale of 4 units of `device`, as its stream holds them,
    verified by the buyer with the key its seller gave it."""
    seller = await make_api(1, supplies=_device(device, lambda _: supply))
    buyer = await make_api(2)
    at_seller, at_buyer = (
        await _keeper(seller, keep, tmp_path),
        await _keeper(buyer, keep, tmp_path),
    )
    offer = await seller.client.publish_offer(
        kind=kind, unit=unit, price=PRICE, window=2, batch=1, device=device
    )
    sale = await buyer.client.start_session(
        offer, endpoint=seller.node.endpoint, deposit=UNIT, target_units=4
    )
    sale_id = bytes.fromhex(sale.session_id[2:])
    await buyer.sessions.wait_stopped(sale_id, timeout=60)
    await at_seller.keeper.streams.wait_ended(sale_id)
    [known] = await at_buyer.keeper.wait_known(sale_id, timeout=10)
    assert known.root.author == seller.address
    stream = await ProvenanceStream.load(at_seller.store, known.stream_id)
    verified = stream.verify(known.key)
    assert verified.ok, verified.problem
    receipt = verified.records[-1]
    assert isinstance(receipt, ReceiptRecord)
    assert receipt.forward.units == 4
    return [r for r in verified.records if isinstance(r, MeterRecord)]


async def test_a_lamps_sale_writes_its_stream_in_seconds(
    make_api: ApiFactory,
    simulation: Simulation,
    keep: list[Kept],  # noqa: F811
    tmp_path: Path,
) -> None:
    lamp = ActuationTimer(simulation)
    meters = await _sold(make_api, keep, tmp_path, "lamp/light", lamp, "actuation", "s")
    assert {m.unit for m in meters} == {MeterUnit.SECOND}
    assert sum(m.delta for m in meters) == meters[-1].total == 4


async def test_a_feeds_sale_by_the_message_writes_its_stream_in_messages(
    make_api: ApiFactory,
    keep: list[Kept],  # noqa: F811
    tmp_path: Path,
) -> None:
    gate = MessageCounter()
    selling = _sold(make_api, keep, tmp_path, "plug/live", gate, "data", "message")

    async def publish() -> None:  # the feed's messages, each let through while paid
        while True:
            gate.admit()
            await asyncio.sleep(0.02)

    publisher = asyncio.ensure_future(publish())
    try:
        meters = await selling
    finally:
        publisher.cancel()
    assert {m.unit for m in meters} == {MeterUnit.MESSAGE}
    assert sum(m.delta for m in meters) == meters[-1].total == 4
