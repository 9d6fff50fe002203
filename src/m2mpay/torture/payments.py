"""Phases of a payment channel: the stream, the cooperative close, and a unilateral
close with a stale state that the killed payee must still challenge."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Final

from m2mpay.errors import M2MPayError
from m2mpay.torture.pair import PairPhase
from m2mpay.torture.phase import Facts

__all__ = ["CloseCrash", "DisputeCrash", "StreamCrash"]

_STREAM_S: Final = (0.1, 0.8)  # how long payments flow before the kill


class StreamCrash(PairPhase):
    """SIGKILL the payer or the payee while payments stream."""

    kind = "stream"

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        since, channel = await pair.open_streaming(rng.randint(1, 10**6))
        await asyncio.sleep(rng.uniform(*_STREAM_S))
        acked = await pair.crash(pair.process(self.victim), channel)
        restored = await pair.total(self.victim, channel)
        await pair.stop_stream(channel)
        facts: Facts = {"acked": acked, "restored": restored}
        return facts | await pair.settled_facts(channel, since)


class CloseCrash(PairPhase):
    """SIGKILL the payer or the payee while they close cooperatively."""

    kind = "close"

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        since, channel = await pair.open_streaming(rng.randint(1, 10**6))
        await asyncio.sleep(rng.uniform(0.02, 0.2))
        await pair.stop_stream(channel)
        payer, _ = await pair.agreed(channel)
        acked = int(payer["acked_total"])
        closing = asyncio.ensure_future(
            pair.payer.call({"cmd": "close", "channel": channel}, 300.0)
        )
        await asyncio.sleep(rng.uniform(0.0, 0.5))  # the close takes a few tenths here
        victim = pair.process(self.victim)
        await victim.kill()
        if self.victim == "payer":
            with contextlib.suppress(M2MPayError):
                await closing  # its process is gone: the answer never comes
            await victim.start()
        else:
            await victim.start()
            with contextlib.suppress(M2MPayError):
                await closing  # the payer's close goes on once the payee is back
        return await self._finish(channel, since, acked)


class DisputeCrash(PairPhase):
    """The payer closes on chain with a stale total; SIGKILL the payee around that
    moment. The restarted payee must still challenge with the newest proof in time."""

    kind = "dispute"

    def __init__(self) -> None:
        super().__init__("payee")

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        since, channel = await pair.open_streaming(1000)
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        await pair.stop_stream(channel)
        payer, _ = await pair.agreed(channel)
        acked = int(payer["acked_total"])
        await pair.stale_close(
            rng, channel, since, acked=acked, payer_key=self.world.keys.payer, kill=pair.payee.kill
        )
        await pair.payee.start()
        return await self._finish(channel, since, acked)
