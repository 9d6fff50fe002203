"""A malicious watcher can at worst do nothing.

It holds its own key, the parties' registrations and every proof it was given. With
those the hub lets it close nothing, accepts no proof it signed itself, and refuses
any total that is not larger than the one recorded, so the party it was supposed to
defend ends up exactly where it would be without any watcher.
"""

from __future__ import annotations

import pytest

from m2mpay.chain import Closing
from m2mpay.errors import TransactionReverted
from m2mpay.watcher import HeldProof
from tests.conftest import UNIT, World
from tests.watcher.conftest import StartWatcher


async def test_a_malicious_watcher_can_at_worst_do_nothing(
    world: World, start_watcher: StartWatcher
) -> None:
    car, charger, hub = world.alice, world.bob, world.hub
    watched = await world.channel(10 * UNIT, period=60)
    unwatched = await world.channel(10 * UNIT, period=60)
    running = await start_watcher(world)
    watcher_key = world.ledger.dev_accounts()[-1]
    assert running.watcher.address == watcher_key.address
    token = await running.client.register(watched, charger)
    totals = [k * UNIT for k in range(1, 6)]
    for total in totals:
        proof = hub.sign_balance_proof(car, watched.id, total)
        await running.client.update(watched.id, charger.address, token, total, proof)
    # Everything the watcher holds is now in the hands of its (malicious) operator, who
    # stops defending anyone.
    newest = running.watcher.state.channels[watched.id].parties[charger.address].proof
    assert newest == HeldProof(totals[-1], hub.sign_balance_proof(car, watched.id, totals[-1]))
    oldest = hub.sign_balance_proof(car, watched.id, totals[0])
    await running.stop()

    # Its key is not a party's: it cannot close.
    with pytest.raises(TransactionReverted, match="only a party can close"):
        await hub.close(watcher_key, watched, totals[-1], 0, None)

    # The car closes both channels claiming only its second payment.
    claimed = totals[1]
    closings: list[Closing] = []
    for channel in (watched, unwatched):
        closings.append(await world.closing_of(await hub.close(car, channel, claimed, 0, None)))
    closing = closings[0]
    recorded = await hub.state_hash(watched.id)

    # A proof the watcher signs itself is refused, for a party or for itself.
    forged = hub.sign_balance_proof(watcher_key, watched.id, 10 * UNIT)
    with pytest.raises(TransactionReverted, match="proof not signed by the party"):
        await hub.challenge(watcher_key, watched, closing, car.address, 10 * UNIT, forged)
    with pytest.raises(TransactionReverted, match="not a party of the channel"):
        await hub.challenge(watcher_key, watched, closing, watcher_key.address, 10 * UNIT, forged)
    # The oldest proof it holds cannot lower the recorded total.
    with pytest.raises(TransactionReverted, match="proof is not newer"):
        await hub.challenge(watcher_key, watched, closing, car.address, totals[0], oldest)
    # Nor can the newest proof be used to lower anything: it only raises the car's total,
    # which is what the charger is owed (here it does nothing, as a lazy watcher would).
    assert await hub.state_hash(watched.id) == recorded

    await world.ledger.advance_time(61)
    payouts = []
    for channel, channel_closing in zip((watched, unwatched), closings, strict=True):
        before = await world.token.balance_of(charger.address)
        await hub.settle(car, channel, channel_closing)
        payouts.append(await world.token.balance_of(charger.address) - before)
    # The victim gets what it would get without any watcher: the stale claim.
    assert payouts == [claimed, claimed]
