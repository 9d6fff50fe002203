"""The node that hosts the embedded chain while others use it: the payee's process
opened the chain's data dir first, so it runs the EVM and serves it over JSON-RPC to
the payer's process (and to this one). SIGKILL it while payments stream; restarted,
it hosts the chain again from its data dir, and the payer must reach the chain again
through it: no acknowledged payment lost, the chain's state intact, the close paid
out as the newest proofs say."""

from __future__ import annotations

import asyncio
import contextlib
import random

from m2mpay.chain import ChannelHub, TokenContract
from m2mpay.chain.shared import connect_ledger
from m2mpay.errors import M2MPayError
from m2mpay.torture.pair import Pair, payment_violation
from m2mpay.torture.phase import Facts, OnShared
from m2mpay.torture.world import World

__all__ = ["ChainHostCrash"]


class _HostedChain(World):
    """A chain of its own in a data dir, hosted by a node process, not by this one."""

    def __init__(self, world: World) -> None:
        super().__init__(world.directory / f"hosted-{world.generation}")
        self.pair: Pair | None = None

    async def start(self) -> None:
        # Deploy while this process hosts the chain, then let go of it: the payee's
        # process, started next, finds the data dir free and hosts it from now on.
        await super().start()
        await super().stop()
        self._ledger = None
        self.pair = Pair.of(self, "chainhost", self.keys.payer, self.keys.payee)
        await self.pair.payee.start()
        await self.attach()
        await self.pair.payer.start()

    async def attach(self) -> None:
        """Reach the chain through whichever process hosts it now (this process only
        observes: it finds the host again as a newcomer would)."""
        if self._ledger is not None:
            with contextlib.suppress(M2MPayError):
                await self._ledger.stop()
        ledger = await connect_ledger(data_dir=self.chain_dir)
        self._ledger = ledger
        self._hub = ChannelHub(ledger, self.hub.address)
        self._token = TokenContract(ledger, self.token.address)

    async def stop(self) -> None:
        if self.pair is not None:
            await self.pair.stop()
        with contextlib.suppress(M2MPayError):
            await super().stop()


class ChainHostCrash(OnShared[_HostedChain]):
    name = "chain.host"

    async def _share(self, world: World) -> _HostedChain:
        return await world.share("hosted-chain", _HostedChain, lambda: _HostedChain(world))

    def check(self, facts: Facts) -> str | None:
        return payment_violation("payee", facts)

    async def trial(self, rng: random.Random) -> Facts:
        chain, pair = self.shared, self.shared.pair
        assert pair is not None
        since, channel = await pair.open_streaming(rng.randint(1, 10**6))
        await asyncio.sleep(rng.uniform(0.1, 0.8))
        acked = await pair.crash(pair.payee, channel)  # the chain goes with it
        await chain.attach()
        restored = await pair.total("payee", channel)
        await pair.stop_stream(channel)
        facts: Facts = {"acked": acked, "restored": restored}
        return facts | await pair.settled_facts(channel, since)
