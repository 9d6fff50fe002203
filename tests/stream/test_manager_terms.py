"""Supply terms and extensions between real nodes: a device's vet refuses a request
before money moves; accepted terms reach the device; an extension keeps a prepaid
session's permit ahead of its meter."""

from __future__ import annotations

import pytest

from m2mpay.devices.simulated import ActuationTimer, Simulation
from m2mpay.errors import StreamError
from m2mpay.stream import Leader, ServiceKind, SessionPhase, new_offer
from m2mpay.stream.supply import SupplyRequest
from tests.stream.conftest import UNIT, Chain, PartyFactory, eventually

PRICE = 10**15


async def test_the_device_vets_the_terms_and_sees_the_accepted_ones(
    chain: Chain, make_party: PartyFactory
) -> None:
    # Time stands almost still until the extension is made, so the five seconds first
    # bought cannot run out before it: the test does not race the clock.
    simulation = Simulation(step_s=0.01, speed=0.001)
    try:
        await _vet_and_extend(chain, make_party, simulation)
    finally:
        await simulation.close()


async def _vet_and_extend(chain: Chain, make_party: PartyFactory, simulation: Simulation) -> None:
    seller = await make_party(1)
    buyer = await make_party(2)
    channel = await buyer.node.open_channel(
        seller.node.address, chain.token.address, UNIT, endpoint=seller.node.endpoint
    )
    vetted: list[SupplyRequest] = []
    made: list[SupplyRequest] = []

    def vet(request: SupplyRequest) -> str | None:
        vetted.append(request)
        return None if request.terms == b"good" else "those terms do not open"

    def device(request: SupplyRequest) -> ActuationTimer:
        made.append(request)
        return ActuationTimer(simulation)

    offer = seller.sessions.publish(
        new_offer(
            seller.node.address,
            ServiceKind.DATA,
            "s",
            PRICE,
            chain.token.address,
            window=5,
            leader=Leader.PAYER,
        ),
        device,
        vet,
    )
    with pytest.raises(StreamError, match="supply_refused: those terms do not open"):
        await buyer.sessions.start_session(offer, target_units=5, supply_terms=b"bad")
    assert buyer.node.channel(channel.channel_id).sent_total == 0  # nothing paid
    assert not made
    session = await buyer.sessions.start_session(offer, target_units=5, supply_terms=b"good")
    assert [r.terms for r in vetted] == [b"bad", b"good"]
    assert vetted[-1].peer == buyer.node.address
    await eventually(lambda: bool(made))
    assert made[0].terms == b"good"
    assert made[0].session_id == session.session_id
    # Before the five seconds are up, the buyer wants twelve: paid ahead, no gap.
    extended = buyer.sessions.extend_session(session.session_id, target_units=12, budget=0)
    assert extended.phase is SessionPhase.ACTIVE
    simulation.speed = 120.0
    sold = await seller.sessions.wait_stopped(session.session_id, timeout=30)
    assert sold.stop_reason == "target reached"
    assert sold.forward.units == 12
    assert sold.forward.paid == 12 * PRICE
    with pytest.raises(StreamError, match="invalid_extension"):
        buyer.sessions.extend_session(session.session_id, target_units=20, budget=0)
