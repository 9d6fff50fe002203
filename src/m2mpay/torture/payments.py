"""Phases of a payment channel: the stream, the cooperative close, and a unilateral
close with a stale state that the killed payee must still challenge."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Final

from m2mpay.errors import M2MPayError
from m2mpay.torture.pair import Pair, payment_violation
from m2mpay.torture.phase import Facts, Phase
from m2mpay.torture.world import World

__all__ = ["CloseCrash", "DisputeCrash", "StreamCrash"]

_STREAM_S: Final = (0.1, 0.8)  # how long payments flow before the kill


class _PairPhase(Phase):
    def __init__(self, victim: str) -> None:
        self.victim = victim
        self._world: World | None = None
        self._pair: Pair | None = None

    @property
    def pair(self) -> Pair:
        assert self._pair is not None, "the phase is not set up"
        return self._pair

    @property
    def world(self) -> World:
        assert self._world is not None, "the phase is not set up"
        return self._world

    async def setup(self, world: World) -> None:
        self._world = world
        self._pair = await Pair.shared(world)

    async def teardown(self) -> None:
        self._pair = None  # the pair is the world's, for the next phase

    def check(self, facts: Facts) -> str | None:
        return payment_violation(self.victim, facts)

    async def _restored(self, channel: str) -> int:
        """The victim's own total, read from it right after its restart."""
        info = await self.pair.info(self.victim, channel)
        return int(info["sent_total" if self.victim == "payer" else "received_total"])

    async def _finish(self, channel: str, since: int, facts: Facts) -> Facts:
        payer, payee = await self.pair.agreed(channel)
        facts |= {
            "sent": int(payer["sent_total"]),
            "acked_total": int(payer["acked_total"]),
            "received": int(payee["received_total"]),
        }
        return facts | await self.pair.close_and_settle(channel, since)

    async def _open_streaming(self, rng: random.Random) -> tuple[int, str]:
        """A fresh channel with payments streaming on it, and the block it began after."""
        since = await self.world.ledger.block_number()
        channel = await self.pair.open()
        await self.pair.payer.call(
            {"cmd": "stream_start", "channel": channel, "amount": str(rng.randint(1, 10**6))}
        )
        return since, channel


class StreamCrash(_PairPhase):
    """SIGKILL the payer or the payee while payments stream."""

    def __init__(self, victim: str) -> None:
        super().__init__(victim)
        self.name = f"stream.{victim}"

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        since, channel = await self._open_streaming(rng)
        await asyncio.sleep(rng.uniform(*_STREAM_S))
        if self.victim == "payer":
            # Read just before the kill: a lower bound of what was acknowledged at it.
            acked = int((await pair.info("payer", channel))["acked_total"])
            await pair.restart("payer")
        else:
            await pair.payee.kill()
            # Every acknowledgement the payer holds came from the payee before it died.
            acked = int((await pair.info("payer", channel))["acked_total"])
            await pair.payee.start()
        facts: Facts = {"acked": acked, "restored": await self._restored(channel)}
        await pair.payer.call({"cmd": "stream_stop", "channel": channel})
        return await self._finish(channel, since, facts)


class CloseCrash(_PairPhase):
    """SIGKILL the payer or the payee while they close cooperatively."""

    def __init__(self, victim: str) -> None:
        super().__init__(victim)
        self.name = f"close.{victim}"

    async def trial(self, rng: random.Random) -> Facts:
        pair = self.pair
        since, channel = await self._open_streaming(rng)
        await asyncio.sleep(rng.uniform(0.02, 0.2))
        await pair.payer.call({"cmd": "stream_stop", "channel": channel})
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
        facts: Facts = {"acked": acked, "restored": await self._restored(channel)}
        return await self._finish(channel, since, facts)


class DisputeCrash(_PairPhase):
    """The payer closes on chain with a stale total; SIGKILL the payee around that
    moment. The restarted payee must still challenge with the newest proof in time."""

    def __init__(self) -> None:
        super().__init__("payee")
        self.name = "dispute.payee"

    async def trial(self, rng: random.Random) -> Facts:
        pair, world = self.pair, self.world
        since = await world.ledger.block_number()
        channel = await pair.open()
        await pair.payer.call({"cmd": "stream_start", "channel": channel, "amount": "1000"})
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        await pair.payer.call({"cmd": "stream_stop", "channel": channel})
        payer, _ = await pair.agreed(channel)
        acked = int(payer["acked_total"])
        stale = rng.randint(0, max(0, acked - 1))
        onchain = await world.onchain_channel(bytes.fromhex(channel[2:]), since)
        cheater = world.key(world.keys.payer)

        async def cheat() -> None:
            await asyncio.sleep(0.3)
            await world.hub.close(cheater, onchain, stale, 0, None)

        async def kill() -> None:
            # From before the stale close lands to while the payee challenges it.
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            await pair.payee.kill()

        await asyncio.gather(cheat(), kill())
        await pair.payee.start()
        facts: Facts = {"acked": acked, "restored": await self._restored(channel)}
        return await self._finish(channel, since, facts)
