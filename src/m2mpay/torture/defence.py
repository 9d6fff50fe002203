"""The watcher while it defends: the payee has handed its newest proof to a watcher
process and gone away; the payer closes on chain with a stale total; the watcher is
SIGKILLed around that moment and restarted on its store, and must still challenge
with the newest proof before the deadline."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from m2mpay.bench.watcher import WatcherProcess
from m2mpay.errors import M2MPayError
from m2mpay.ports import free_port
from m2mpay.torture.pair import Attended, Pair, payment_violation
from m2mpay.torture.phase import Facts, OnShared
from m2mpay.torture.world import TortureError, World, until
from m2mpay.watcher_client import WatcherClient

__all__ = ["WatcherCrash"]


class _Guarded(Attended):
    """The watcher process and the pair whose payee feeds it (`--watcher URL`)."""

    def __init__(self, world: World) -> None:
        directory = world.files("watcher")
        port = free_port()  # kept across restarts: the payee's feed knows this URL
        self.watcher = WatcherProcess(
            hub=world.hub.address,
            store=directory / "watcher.sqlite3",
            data_dir=world.chain_dir,
            extra=("--port", str(port)),
        )
        self.url = f"http://127.0.0.1:{port}"
        keys = world.keys
        pair = Pair.of(world, "guarded", keys.guarded_payer, keys.guarded_payee, watcher=self.url)
        super().__init__(self.watcher, pair)


class WatcherCrash(OnShared[_Guarded]):
    name = "watcher.defending"

    async def _share(self, world: World) -> _Guarded:
        return await world.share("guarded", _Guarded, lambda: _Guarded(world))

    def check(self, facts: Facts) -> str | None:
        violation = payment_violation("watcher", facts)
        if violation is None and facts["returned"] != facts["received"]:
            return (
                f"the sides disagree on the newest state: the returning payee's node says "
                f"it got {facts['returned']}, it held {facts['received']} when it left"
            )
        return violation

    async def _held(self, channel: str) -> int:
        """The newest total the watcher holds for the payee (-1: none yet)."""
        guarded = self.shared
        payee = guarded.pair.payee.address
        assert payee is not None
        async with WatcherClient(guarded.url) as client:
            try:
                view: dict[str, Any] = await client.channel(channel)
            except M2MPayError:
                return -1  # not registered yet
        for party in view["parties"]:
            if party["party"] == payee.checksum and party["held_transferred"] is not None:
                return int(party["held_transferred"])
        return -1

    async def trial(self, rng: random.Random) -> Facts:
        pair, watcher = self.shared.pair, self.shared.watcher
        since, channel = await pair.open_streaming(1000)
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        await pair.stop_stream(channel)
        payer, payee = await pair.agreed(channel)
        acked, received = int(payer["acked_total"]), int(payee["received_total"])
        # The payee goes away only once its watcher holds its newest proof.
        await until(lambda: self._held(channel), lambda held: held >= received, what="the feed")
        await pair.payee.stop()
        payer_key = self.world.keys.guarded_payer
        await pair.stale_close(
            rng, channel, since, acked=acked, payer_key=payer_key, kill=watcher.kill
        )
        await watcher.start()
        facts: Facts = {"acked": acked, "restored": await self._held(channel)}
        facts |= await pair.close_and_settle(channel, since, payee_offline=received)
        await pair.payee.start()
        try:
            back = await until(
                lambda: pair.info("payee", channel),
                lambda info: info["phase"] == "settled",
                what="the returning payee sees the settlement",
            )
        except TortureError:
            back = await pair.info("payee", channel)
        return facts | {
            "sent": int(payer["sent_total"]),
            "acked_total": acked,
            "received": received,
            "returned": int(back["final_balance_mine"] or 0),
        }
