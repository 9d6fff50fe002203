"""Through running daemons only: a lamp joins the seller's device bus, the seller
offers its light, a buyer pays for forty seconds through its own node's API, the
lamp lights for exactly that long, and its telemetry is anchored on chain and
proved through the API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from m2mpay.bench.daemons import NodeProcess
from m2mpay.client import NodeClient
from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices.lamp import Lamp

PRICE = 10**15  # token units per second of light
SECONDS = 40


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    chain = ("--chain-dir", str(tmp_path / "chain"), "--telemetry-interval", "0.5")
    seller, buyer = (
        NodeProcess(tmp_path / "seller", *chain),
        NodeProcess(tmp_path / "buyer", *chain),
    )
    try:
        seller.start()
        buyer.start()
        yield seller, buyer
    finally:
        buyer.stop()
        seller.stop()


async def _until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    """Poll another process's API; name what never happened when it times out."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():  # noqa: ASYNC110 (the state lives in another process)
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"waited {timeout} s for {what}")


async def test_a_lamp_on_the_bus_lights_exactly_the_seconds_paid_through_the_apis(
    daemons: tuple[NodeProcess, NodeProcess],
) -> None:
    seller_proc, buyer_proc = daemons
    seller = NodeClient(seller_proc.url, seller_proc.ready["api_token"])
    buyer = NodeClient(buyer_proc.url, buyer_proc.ready["api_token"])
    storefront = NodeClient(seller_proc.url)  # no token: the public storefront
    token = Address(seller_proc.ready["token_contract"])
    lamp = Lamp(
        seller_proc.url.replace("http://", "ws://") + "/v1/devices/ws",
        PrivateKey.generate(),
        price=PRICE,
        asset=token,
        speed=40.0,
        server=Address(seller_proc.ready["address"]),
    )
    async with seller, buyer, storefront, lamp:

        async def registered() -> bool:
            return any(d.device_id == lamp.address.checksum for d in await seller.devices())

        await _until(registered, "the lamp's registration")
        offer = await seller.publish_offer(
            kind="actuation",
            unit="s",
            price=PRICE,
            window=5,
            leader="payer",  # it lights only once paid
            device=f"{lamp.address.checksum}/light",
        )
        await buyer.faucet()
        await seller.faucet()  # the seller pays the gas of its telemetry anchors
        [found] = await storefront.offers()
        assert found.offer_id == offer.offer_id
        session = await buyer.start_session(
            found,
            endpoint=seller_proc.ready["peer_endpoint"],
            deposit=10**18,
            budget=SECONDS * PRICE,
        )

        async def stopped() -> bool:
            return (await buyer.session(session.session_id)).phase == "stopped"

        await _until(stopped, "the end of the session")
        bought = await buyer.session(session.session_id)
        sold = await seller.session(session.session_id)
        assert bought.stop_reason == "budget exhausted"
        assert bought.countersigned
        assert sold.forward == bought.forward
        assert bought.forward.units == SECONDS
        assert bought.forward.paid == bought.forward.value == SECONDS * PRICE
        assert lamp.session_seconds(session.session_id) == pytest.approx(SECONDS)
        assert lamp.is_on is False

        # The lamp told of each switch; the records are anchored and provable.
        records = await seller.telemetry(lamp.address.checksum)
        assert [r.data.get("on") for r in records][:1] == [True]

        async def anchored() -> bool:
            return all(r.batch is not None for r in await seller.telemetry(lamp.address.checksum))

        await _until(anchored, "the telemetry anchor")
        proof = await seller._call(
            "GET", f"/v1/devices/{lamp.address.checksum}/telemetry/{records[0].seq}/proof"
        )
        assert proof["anchor"] is not None
        assert proof["tx_hash"] is not None
        assert proof["data"]
