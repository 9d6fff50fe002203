"""Restarts and deadlines: the watcher defends a close it learns of late.

- A real watcher process (uvicorn) is killed with SIGKILL after acknowledging proofs;
  the car closes while it is down; the restarted process catches up from its cursor,
  challenges in time and settles.
- A watcher that comes back with only seconds of the challenge period left still wins.
- A proof handed over after the close is used at once.
- Snapshots and the log rebuild the same state across a graceful restart.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson

from m2mpay.bench.watcher import WatcherProcess
from m2mpay.chain.shared import connect_ledger
from m2mpay.store import open_store
from m2mpay.watcher_client import WatcherClient
from tests.conftest import UNIT, World
from tests.watcher.conftest import StartWatcher, make_world, wait_for


async def _closing_total(client: WatcherClient, channel_id: bytes, party: str) -> str | None:
    closing = (await client.channel(channel_id))["onchain"]["closing"]
    return None if closing is None else str(closing[f"transferred_{party}"])


async def test_killed_watcher_process_comes_back_and_defends(tmp_path: Path) -> None:
    chain_dir = tmp_path / "chain"
    ledger = await connect_ledger(data_dir=chain_dir)  # hosted here; the watcher uses RPC
    try:
        world = await make_world(ledger)
        car, charger = world.alice, world.bob
        channel = await world.channel(10 * UNIT, period=3600)
        process = WatcherProcess(
            hub=world.hub.address, store=tmp_path / "watcher.sqlite3", data_dir=chain_dir
        )
        ready = await process.start()
        assert ready["address"] == str(ledger.dev_accounts()[-1].address)
        paid = 3 * UNIT
        async with WatcherClient(process.url) as client:
            token = await client.register(channel, charger)
            for total in (UNIT, 2 * UNIT, paid):
                proof = world.hub.sign_balance_proof(car, channel.id, total)
                await client.update(channel.id, charger.address, token, total, proof)
        await process.kill()  # no flush, no snapshot: acknowledged proofs must be durable

        close = await world.hub.close(car, channel, UNIT, 0, None)
        charger_before = await world.token.balance_of(charger.address)

        await process.start()
        try:
            async with WatcherClient(process.url) as client:

                async def defended() -> bool:
                    return await _closing_total(client, channel.id, "a") == str(paid)

                await wait_for(defended, what="the restarted watcher's challenge")
                [dispute] = await client.disputes()
                assert (dispute["kind"], dispute["status"]) == ("challenge", "mined")
                assert dispute["close_block"] == close.block_number
                await world.ledger.advance_time(3601)

                async def settled() -> bool:
                    view = await client.channel(channel.id)
                    return bool(view["onchain"]["phase"] == "settled")

                await wait_for(settled, what="the settlement")
                status = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "m2mpay.cli.watcher",
                    "status",
                    "--url",
                    process.url,
                    "--json",
                    stdout=asyncio.subprocess.PIPE,
                )
                out, _ = await status.communicate()
                summary = orjson.loads(out)
                assert (summary["challenges"], summary["settlements"]) == (1, 1)
        finally:
            assert await process.stop() == 0  # SIGTERM: a graceful exit
        assert any("challenged 0x" in line for line in process.log_lines())
        assert await world.token.balance_of(charger.address) == charger_before + paid
    finally:
        await ledger.stop()


async def test_close_found_with_seconds_left_is_still_defended(
    world: World, start_watcher: StartWatcher, tmp_path: Path
) -> None:
    store = tmp_path / "watcher.sqlite3"
    channel = await world.channel(10 * UNIT, period=3600)
    first = await start_watcher(world, store=store)
    token = await first.client.register(channel, world.bob)
    proof = world.hub.sign_balance_proof(world.alice, channel.id, 4 * UNIT)
    await first.client.update(channel.id, world.bob.address, token, 4 * UNIT, proof)
    await first.stop()

    closing = await world.closing_of(await world.hub.close(world.alice, channel, 0, 0, None))
    # The watcher is away for almost the whole period: a few seconds are left.
    left = 10
    await world.ledger.advance_time(closing.deadline - await world.ledger.block_timestamp() - left)
    assert closing.deadline - await world.ledger.block_timestamp() <= left

    second = await start_watcher(world, store=store)

    async def defended() -> bool:
        return await _closing_total(second.client, channel.id, "a") == str(4 * UNIT)

    await wait_for(defended, what="the late challenge")
    [dispute] = await second.client.disputes()
    mined = await world.ledger.block_timestamp(dispute["block"])
    assert mined <= closing.deadline  # the hub would have refused it otherwise


async def test_proof_given_during_the_close_is_used_at_once(
    world: World, start_watcher: StartWatcher
) -> None:
    channel = await world.channel(10 * UNIT, period=3600)
    running = await start_watcher(world)
    token = await running.client.register(channel, world.bob)
    await world.hub.close(world.alice, channel, UNIT, 0, None)

    async def closing_seen() -> bool:
        return await _closing_total(running.client, channel.id, "a") == str(UNIT)

    await wait_for(closing_seen, what="the close")
    assert await running.client.disputes() == []  # nothing held yet: nothing to do
    proof = world.hub.sign_balance_proof(world.alice, channel.id, 2 * UNIT)
    await running.client.update(channel.id, world.bob.address, token, 2 * UNIT, proof)

    async def defended() -> bool:
        return await _closing_total(running.client, channel.id, "a") == str(2 * UNIT)

    await wait_for(defended, what="the challenge with the late proof")


async def test_state_survives_a_graceful_restart_with_snapshots(
    world: World, start_watcher: StartWatcher, tmp_path: Path
) -> None:
    store = tmp_path / "watcher.sqlite3"
    first = await start_watcher(world, store=store, snapshot_every=7)
    channels = [await world.channel(UNIT) for _ in range(4)]
    tokens = [await first.client.register(c, world.bob) for c in channels]
    for total in range(1, 4):
        for channel, token in zip(channels, tokens, strict=True):
            proof = world.hub.sign_balance_proof(world.alice, channel.id, total)
            await first.client.update(channel.id, world.bob.address, token, total, proof)

    async def all_open() -> bool:
        views = [await first.client.channel(c.id) for c in channels]
        return all(v["onchain"]["phase"] == "open" for v in views)

    await wait_for(all_open, what="the back-fill")
    before = first.watcher.state.snapshot()
    info = await first.client.info()
    await first.stop()
    async with open_store(store) as raw:
        recovered = await raw.load()
    assert recovered.snapshot is not None  # the restart below reads a snapshot, then the log

    second = await start_watcher(world, store=store, snapshot_every=7)
    assert second.watcher.state.snapshot() == before
    again = await second.client.info()
    assert (again.channels, again.proofs, again.registrations) == (4, 4, 4)
    assert again.cursor >= info.cursor
    # The tokens issued before the restart still open their registrations.
    proof = world.hub.sign_balance_proof(world.alice, channels[0].id, 9)
    await second.client.update(channels[0].id, world.bob.address, tokens[0], 9, proof)
