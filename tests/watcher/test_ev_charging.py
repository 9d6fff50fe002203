"""The malicious EV-charging case, end to end on both ledgers.

A car (party a) pays a charger (party b) with signed cumulative proofs. The charger
registers with a watcher, hands it the newest proof and goes offline. The car closes
unilaterally claiming it paid less; the watcher challenges with the newer proof and,
after the deadline, settles, so the charger finds exactly what it was paid on chain.
"""

from __future__ import annotations

from m2mpay.chain import ChannelChallenged
from tests.conftest import UNIT, World
from tests.watcher.conftest import StartWatcher, wait_for

WH_PRICE = UNIT // 1000  # price of one Wh of energy


async def test_watcher_defends_an_offline_charger_against_a_stale_close(
    any_world: World, start_watcher: StartWatcher
) -> None:
    world = any_world
    car, charger = world.alice, world.bob
    channel = await world.channel(10 * UNIT, period=60)
    running = await start_watcher(world)
    token = await running.client.register(channel, charger)

    # Energy.Active.Import.Register climbs 500 Wh at a time; the car pays for each step.
    totals = [wh * WH_PRICE for wh in range(500, 10_001, 500)]
    for total in totals:
        proof = world.hub.sign_balance_proof(car, channel.id, total)
        stored = await running.client.update(channel.id, charger.address, token, total, proof)
        assert stored.transferred == total
    paid = totals[-1]
    charger_before = await world.token.balance_of(charger.address)
    car_before = await world.token.balance_of(car.address)

    # The charger is offline now. The car closes claiming only its fifth payment.
    claimed = totals[4]
    close = await world.hub.close(car, channel, claimed, 0, None)

    async def challenged() -> bool:
        closing = (await running.client.channel(channel.id))["onchain"]["closing"]
        return closing is not None and closing["transferred_a"] == str(paid)

    await wait_for(challenged, what="the watcher's challenge")
    events = await world.hub.events(close.block_number)
    challenges = [e for e in events if isinstance(e, ChannelChallenged)]
    assert [(e.challenger, e.transferred_a) for e in challenges] == [
        (running.watcher.address, paid)
    ]
    [dispute] = await running.client.disputes()
    assert dispute["kind"] == "challenge"
    assert dispute["status"] == "mined"
    assert dispute["participant"] == car.address.checksum
    assert dispute["beneficiary"] == charger.address.checksum
    assert (dispute["replaced"], dispute["transferred"]) == (str(claimed), str(paid))
    assert dispute["close_block"] == close.block_number
    assert dispute["block"] == challenges[0].block_number
    assert dispute["latency_ms"] is not None
    assert dispute["latency_ms"] >= 0

    await world.ledger.advance_time(61)

    async def settled() -> bool:
        view = await running.client.channel(channel.id)
        return bool(view["onchain"]["phase"] == "settled")

    await wait_for(settled, what="the watcher's settlement")
    assert await world.token.balance_of(charger.address) == charger_before + paid
    assert await world.token.balance_of(car.address) == car_before + 10 * UNIT - paid
    kinds = [(d["kind"], d["status"]) for d in await running.client.disputes()]
    assert kinds == [("challenge", "mined"), ("settle", "mined")]
