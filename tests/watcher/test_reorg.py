"""The watcher across reorganisations, on a real Anvil (`anvil_reorg` replaces the newest
blocks with empty ones and does not put their transactions back in its pool).

A reorganisation drops the watcher's mined challenge: whether its ledger still holds
the signed bytes (sent again as they were) or not (a restarted process: the watcher
challenges anew from the view it reads again), and whether its follower had read the
challenge's block (its block window finds it gone) or only the receipt had told it
(the follower reads past the block without meeting the challenge), the challenge
lands before the deadline and settlement pays the newest proof. The same when the
watcher was stopped while the reorganisation happened: the anchors stored with its
cursor show that blocks it had read were replaced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from m2mpay.chain import AnvilNode, RpcLedger, dev_keys
from m2mpay.chain.events import ChannelChallenged, ChannelClosing
from m2mpay.chain.forks import SentTransactions
from tests.chain.anvil_faults import reorg_from
from tests.conftest import UNIT, World
from tests.watcher.conftest import FAST, StartWatcher, make_world, wait_for

PERIOD = 60
PAID = 3 * UNIT


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    # Its own Anvil: a reorganisation would confuse other tests sharing the session's.
    node = AnvilNode()
    node.start()
    yield node
    node.stop()


@pytest.fixture
async def reorg_world(anvil: AnvilNode) -> AsyncIterator[World]:
    async with RpcLedger(anvil.url, dev_keys=dev_keys()) as ledger:
        yield await make_world(ledger)


async def _challenge_on_chain(world: World) -> ChannelChallenged | None:
    found = [e for e in await world.hub.events(0) if isinstance(e, ChannelChallenged)]
    return found[-1] if found else None


@pytest.mark.parametrize("block_read", [True, False], ids=["block-read", "receipt-only"])
@pytest.mark.parametrize("sent_bytes_kept", [True, False], ids=["resent", "challenged-anew"])
async def test_a_dropped_challenge_lands_again_before_the_deadline_and_settles(
    reorg_world: World, start_watcher: StartWatcher, sent_bytes_kept: bool, block_read: bool
) -> None:
    world = reorg_world
    ledger = world.ledger
    assert isinstance(ledger, RpcLedger)
    car, charger = world.alice, world.bob
    channel = await world.channel(10 * UNIT, period=PERIOD)
    # A slow follower reads the challenge's block only after the reorganisation.
    config = FAST if block_read else replace(FAST, poll_interval_s=3.0)
    running = await start_watcher(world, config=config)
    token = await running.client.register(channel, charger)
    proof = world.hub.sign_balance_proof(car, channel.id, PAID)
    await running.client.update(channel.id, charger.address, token, PAID, proof)

    async def backfilled() -> bool:
        return bool((await running.client.channel(channel.id))["onchain"]["phase"] == "open")

    await wait_for(backfilled, what="the back-fill")
    close = await world.hub.close(car, channel, 0, 0, None)  # a stale close: nothing paid
    [closing] = [
        e for e in await world.hub.events(close.block_number) if isinstance(e, ChannelClosing)
    ]
    first = await wait_for(lambda: _challenge_on_chain(world), what="the challenge")
    assert first.transferred_a == PAID

    async def seen_by_watcher() -> bool:
        view = await running.client.channel(channel.id)
        return bool(view["onchain"]["closing"]["transferred_a"] == str(PAID))

    await wait_for(seen_by_watcher, what="the watcher reading its challenge")
    if block_read:

        async def block_read_by_follower() -> bool:
            return bool((await running.client.info()).cursor >= first.block_number)

        await wait_for(block_read_by_follower, what="the follower reading the block")
    else:
        assert running.watcher.info()["cursor"] < first.block_number
    if not sent_bytes_kept:
        # As if the watcher had restarted: nothing to send again, it must challenge anew.
        ledger._sent = SentTransactions()

    await reorg_from(ledger, first.block_number)
    assert await _challenge_on_chain(world) is None

    async def landed_again() -> ChannelChallenged | None:
        again = await _challenge_on_chain(world)
        return again if again is not None and again.transferred_a == PAID else None

    again = await wait_for(landed_again, what="the challenge landing again")
    assert await ledger.block_timestamp(again.block_number) <= closing.deadline
    if sent_bytes_kept:
        assert again.tx_hash == first.tx_hash  # the same signed bytes
    await wait_for(seen_by_watcher, what="the watcher reading the challenge again")

    before = await world.token.balance_of(charger.address)
    await ledger.advance_time(PERIOD + 1)

    async def settled() -> bool:
        return bool((await running.client.channel(channel.id))["onchain"]["phase"] == "settled")

    await wait_for(settled, what="the settlement")
    assert await world.token.balance_of(charger.address) == before + PAID
    kinds = [d["kind"] for d in await running.client.disputes() if d["status"] == "mined"]
    assert kinds.count("settle") == 1


async def test_a_challenge_dropped_while_the_watcher_is_stopped_is_made_again(
    reorg_world: World, start_watcher: StartWatcher, tmp_path: Path
) -> None:
    world = reorg_world
    ledger = world.ledger
    assert isinstance(ledger, RpcLedger)
    car, charger = world.alice, world.bob
    channel = await world.channel(10 * UNIT, period=PERIOD)
    store = tmp_path / "stopped.sqlite3"
    running = await start_watcher(world, store=store)
    token = await running.client.register(channel, charger)
    proof = world.hub.sign_balance_proof(car, channel.id, PAID)
    await running.client.update(channel.id, charger.address, token, PAID, proof)

    async def backfilled() -> bool:
        return bool((await running.client.channel(channel.id))["onchain"]["phase"] == "open")

    await wait_for(backfilled, what="the back-fill")
    close = await world.hub.close(car, channel, 0, 0, None)
    [closing] = [
        e for e in await world.hub.events(close.block_number) if isinstance(e, ChannelClosing)
    ]
    first = await wait_for(lambda: _challenge_on_chain(world), what="the challenge")

    async def block_read_by_follower() -> bool:
        return bool((await running.client.info()).cursor >= first.block_number)

    await wait_for(block_read_by_follower, what="the follower reading the block")
    await running.stop()
    ledger._sent = SentTransactions()  # the watcher's process is gone with its bytes

    await reorg_from(ledger, first.block_number)
    running = await start_watcher(world, store=store)

    async def landed_again() -> ChannelChallenged | None:
        again = await _challenge_on_chain(world)
        return again if again is not None and again.transferred_a == PAID else None

    again = await wait_for(landed_again, what="the challenge made again")
    assert await ledger.block_timestamp(again.block_number) <= closing.deadline

    before = await world.token.balance_of(charger.address)
    await ledger.advance_time(PERIOD + 1)

    async def settled() -> bool:
        return bool((await running.client.channel(channel.id))["onchain"]["phase"] == "settled")

    await wait_for(settled, what="the settlement")
    assert await world.token.balance_of(charger.address) == before + PAID
