"""The lamp simulator on the bus, and the whole path of a paid service: a buyer's
node pays a seller's node over a channel in a metered session, the seller's session
manager commands the lamp over the device bus, and the lamp lights for exactly the
seconds paid, on its own (fast) clock."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from pathlib import Path

from m2mpay.api.gateway import EventHub
from m2mpay.bench.bus_device import ASSET, PRICE
from m2mpay.bus.events import BusEvent, DeviceRegistered, DeviceStateChanged
from m2mpay.chain import deploy_anchor
from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices import Lamp
from m2mpay.node import ChannelInfo
from m2mpay.provenance.telemetry import TelemetryConfig, verify_anchored
from m2mpay.stream import Leader, Offer, ServiceKind, SessionInfo, SessionPhase, new_offer
from tests.bus.conftest import BusFactory, BusHost
from tests.node.conftest import UNIT, Chain
from tests.stream.conftest import Party, PartyFactory
from tests.waiting import eventually, eventually_async

SPEED = 60.0  # a lamp minute each second


def _sell_every_lamp(host: BusHost, seller: Party, offers: list[Offer]) -> None:
    """What a daemon does: when a device registers a service, publish an offer for it."""

    def on_event(event: BusEvent) -> None:
        if not isinstance(event, DeviceRegistered):
            return
        light = event.device.service("light")
        assert light is not None
        offer = new_offer(
            seller.node.address,
            ServiceKind.ACTUATION,
            light.unit,
            light.price,
            light.asset,
            window=5,
            leader=Leader.PAYER,  # paid before it lights
        )
        offers.append(
            seller.sessions.publish(
                offer, host.bus.supply_factory(event.device.address, light.name)
            )
        )

    host.bus.add_listener(on_event)


async def _buy(
    chain: Chain, make_party: PartyFactory, make_bus: BusFactory
) -> tuple[Party, Party, ChannelInfo, BusHost, list[Offer]]:
    seller = await make_party(1)
    buyer = await make_party(2)
    channel = await buyer.node.open_channel(
        seller.node.address, chain.token.address, UNIT, endpoint=seller.node.endpoint
    )
    # The bus speaks for the seller's node and anchors telemetry with its key.
    anchor, _ = await deploy_anchor(chain.ledger, chain.keys[0])
    host = await make_bus(
        server_key=chain.keys[1],
        anchor=anchor,
        signer=chain.keys[1],
        telemetry=TelemetryConfig(batch_records=4, batch_interval_s=3600),
    )
    offers: list[Offer] = []
    _sell_every_lamp(host, seller, offers)
    return seller, buyer, channel, host, offers


async def _receipt_matches_channel(buyer: Party, bought: SessionInfo, before: ChannelInfo) -> None:
    await eventually(
        lambda: buyer.node.channel(before.channel_id).acked_total >= bought.forward.paid
    )
    after = buyer.node.channel(before.channel_id)
    assert bought.phase is SessionPhase.STOPPED
    assert bought.countersigned
    assert bought.receipt is not None
    assert bought.forward.paid == after.sent_total - before.sent_total


async def test_a_paid_lamp_lights_for_exactly_the_seconds_paid(
    chain: Chain,
    make_party: PartyFactory,
    make_bus: BusFactory,
) -> None:
    seller, buyer, channel, host, offers = await _buy(chain, make_party, make_bus)
    hub = EventHub()  # what the node's /v1/events is fed from
    hub.attach_bus(host.bus)
    heard = hub.subscribe()
    lamp = Lamp(
        host.url,
        PrivateKey.generate(),
        price=PRICE,
        asset=chain.token.address,
        speed=SPEED,
        server=seller.node.address,  # pinned: it talks to its own gateway only
    )
    async with lamp:
        await eventually(lambda: bool(offers))
        (offer,) = offers
        assert offer.price == PRICE
        session = await buyer.sessions.start_session(offer, budget=42 * PRICE)
        bought = await buyer.sessions.wait_stopped(session.session_id, timeout=60)
        sold = await seller.sessions.wait_stopped(session.session_id, timeout=10)
        await host.bus.drain()
        await eventually(lambda: not lamp.is_on and lamp.commands[-1]["action"] == "end")

    assert bought.stop_reason == "budget exhausted"
    # Forty-two seconds of light on the lamp's own clock, for forty-two seconds paid.
    assert lamp.session_seconds(session.session_id) == 42.0
    assert lamp.lit_seconds == 42.0
    assert sold.forward.units == bought.forward.units == 42
    assert sold.forward.paid == sold.forward.value == 42 * PRICE
    assert bought.forward.paid == 42 * PRICE
    await _receipt_matches_channel(buyer, bought, channel)
    assert lamp.switches[0] is True
    assert lamp.switches[-1] is False
    # The bus told of each change of the lamp's word for its state, and only of changes;
    # the event stream carried them as `device` events (a dashboard shows it lit from them).
    states = [
        e.state
        for e in host.events
        if isinstance(e, DeviceStateChanged) and e.device == lamp.address
    ]
    assert states[-2:] == ["on", "off"]
    assert all(a != b for a, b in itertools.pairwise(states))
    published = []

    def gone() -> bool:
        # The lamp left when its `async with` did; the bus hears its socket close a
        # moment later and tells it as a last, offline `device` event.
        while not heard.empty():
            published.append(heard.get_nowait())
        last = [e for e in published if e["kind"] == "device"][-1:]
        return bool(last) and last[0]["online"] is False

    await eventually(gone)
    device_events = [e for e in published if e["kind"] == "device"]
    assert all(e["device_id"] == lamp.address.checksum for e in device_events)
    assert [e["state"] for e in device_events if e["online"]][-2:] == ["on", "off"]
    # Every command was for this session, the targets only grew, and each was acked.
    ons = [c["until_units"] for c in lamp.commands if c["action"] == "on"]
    assert ons == sorted(ons)
    assert ons[-1] == 42
    assert {c["session"] for c in lamp.commands} == {"0x" + session.session_id.hex()}
    assert await host.bus.pending_commands(lamp.address) == []
    # The lamp's switches were logged as telemetry, every one stored, and anchored on
    # chain in batches (every fourth record, and the rest now).
    records = await host.bus.telemetry(lamp.address)
    assert [r["data"]["on"] for r in records] == lamp.switches
    anchor = host.bus.telemetry_log.anchor
    assert anchor is not None
    await host.bus.telemetry_log.flush()
    batches = await anchor.batches(0, device=lamp.address)
    assert sum(b.batch.count for b in batches) == len(records)
    assert all(b.submitter == seller.node.address for b in batches)
    for record in records:
        proof = await host.bus.prove(lamp.address, record["seq"])
        assert await verify_anchored(anchor, proof, seller.node.address)


class _LampThatDropsOff(Lamp):
    """A lamp that hangs up right after telling the bus of a new whole second past
    `after_s`: the payment that reading brings is then commanded while it is away (a
    drop timed from outside could fall after every paid second was already sent)."""

    after_s = 3
    dropped = False
    _told = 0

    async def report(self) -> None:
        await super().report()
        told = int(self.lit_seconds)
        if not self.dropped and told >= self.after_s and told > self._told:
            self.dropped = True
            await self.go_offline()
        self._told = told


async def test_a_lamp_that_drops_off_gets_its_commands_when_it_is_back(
    chain: Chain,
    make_party: PartyFactory,
    make_bus: BusFactory,
) -> None:
    _, buyer, channel, host, offers = await _buy(chain, make_party, make_bus)
    lamp = _LampThatDropsOff(
        host.url, PrivateKey.generate(), price=PRICE, asset=chain.token.address, speed=SPEED
    )
    async with lamp:
        await eventually(lambda: bool(offers))
        session = await buyer.sessions.start_session(offers[0], budget=30 * PRICE)
        await eventually(lambda: lamp.dropped)

        async def queued() -> bool:
            return bool(await host.bus.pending_commands(lamp.address))

        # Money keeps coming while the lamp is away: its commands wait for it.
        await eventually_async(queued)
        logins = lamp.logins
        lamp.go_online()
        bought = await buyer.sessions.wait_stopped(session.session_id, timeout=60)
        await host.bus.drain()
        await eventually(lambda: not lamp.is_on and lamp.commands[-1]["action"] == "end")
    assert lamp.logins == logins + 1
    assert lamp.session_seconds(session.session_id) == 30.0
    assert bought.forward.units == 30
    assert bought.forward.paid == 30 * PRICE
    await _receipt_matches_channel(buyer, bought, channel)


async def test_a_lamp_pinned_to_another_gateway_does_not_log_in(make_bus: BusFactory) -> None:
    host = await make_bus()
    elsewhere = Address(bytes([0xEE]) * 20)
    lamp = Lamp(host.url, PrivateKey.generate(), price=PRICE, asset=ASSET, server=elsewhere)
    async with lamp:
        await eventually(lambda: bool(lamp.refused))
    assert lamp.refused[0] == host.bus.server
    assert lamp.logins == 0
    assert host.bus.devices() == []


async def test_the_lamp_runs_as_a_program(make_bus: BusFactory, tmp_path: Path) -> None:
    host = await make_bus()
    key = PrivateKey.generate()
    key_file = tmp_path / "lamp.key"
    key_file.write_text(key.secret.hex())
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "m2mpay.devices.lamp",
        "--url",
        host.url,
        "--key-file",
        str(key_file),
        "--price",
        str(PRICE),
        "--asset",
        ASSET.checksum,
        "--speed",
        "100",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await eventually(lambda: any(d.address == key.address for d in host.bus.devices()))
        supply = host.bus.supply_for(key.address, "light")
        readings: list[int] = []
        await supply.start(readings.append, 0)
        supply.permit(10)  # ten lamp seconds: a tenth of a real second at speed 100
        await eventually(lambda: readings[-1:] == [10])
        await host.bus.drain()

        async def acked() -> bool:
            return not await host.bus.pending_commands(key.address)

        await eventually_async(acked)
    finally:
        process.terminate()  # by its PID, the process this test started
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    assert key.address.checksum in (await process.stderr.read()).decode()
    assert host.bus.device(key.address).name == "lamp"
