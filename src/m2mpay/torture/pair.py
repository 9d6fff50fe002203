"""A payer and a payee, each a node in its own process on the run's chain, and what
the phases do with them: open a fresh channel, agree, close, settle, and read back
from the chain what the settlement paid."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from m2mpay.bench.processes import PeerProcess
from m2mpay.chain.events import ChannelChallenged, ChannelClosing
from m2mpay.errors import M2MPayError
from m2mpay.torture.phase import Facts, OnOwn, OnShared
from m2mpay.torture.world import PATIENCE_S, UNIT, TortureError, World, until

__all__ = [
    "CHALLENGE_PERIOD",
    "DEPOSIT",
    "Attended",
    "BesidePair",
    "OwnPair",
    "Pair",
    "PairPhase",
    "payment_violation",
]

DEPOSIT: Final = 10 * UNIT
CHALLENGE_PERIOD: Final = 3600
_FINAL: Final = ("closed", "settled")


@dataclass
class Pair:
    world: World
    payer: PeerProcess
    payee: PeerProcess

    @classmethod
    async def shared(cls, world: World) -> Pair:
        """The pair every payment and session phase uses in turn (each trial opens a
        fresh channel), started on first use: a phase then costs no start-up."""
        keys = world.keys
        return await world.share(
            "pair", cls, lambda: cls.of(world, "pair", keys.payer, keys.payee, sessions=True)
        )

    @classmethod
    def of(
        cls,
        world: World,
        name: str,
        payer: int,
        payee: int,
        *,
        sessions: bool = False,
        **payee_options: Any,
    ) -> Pair:
        """A pair of node processes (dev accounts `payer` and `payee`), not started."""

        def make(role: str, key: int, **options: Any) -> PeerProcess:
            if sessions:
                options["sessions"] = world.files(name) / f"{role}-sessions.sqlite3"
            return world.peer(name, role, key, **options)

        return cls(world, make("payer", payer), make("payee", payee, **payee_options))

    async def start(self) -> None:
        await asyncio.gather(self.payer.start(), self.payee.start())

    def process(self, role: str) -> PeerProcess:
        return self.payer if role == "payer" else self.payee

    async def stop(self) -> None:
        for process in (self.payer, self.payee):
            with contextlib.suppress(M2MPayError, OSError):
                await process.stop()

    async def open(self) -> str:
        opening = self.payee.channel_to(self.world.token.address, DEPOSIT)
        opened = await self.payer.call(
            {"cmd": "open", **opening, "challenge_period": CHALLENGE_PERIOD}
        )
        channel: str = opened["channel"]
        return channel

    async def open_streaming(self, amount: int) -> tuple[int, str]:
        """A fresh channel with payments of `amount` streaming on it, and the block it
        began after."""
        since = await self.world.ledger.block_number()
        channel = await self.open()
        await self.payer.call({"cmd": "stream_start", "channel": channel, "amount": str(amount)})
        return since, channel

    async def stop_stream(self, channel: str) -> None:
        await self.payer.call({"cmd": "stream_stop", "channel": channel})

    async def info(self, role: str, channel: str) -> dict[str, Any]:
        return await self.process(role).call({"cmd": "info", "channel": channel})

    async def acked(self, channel: str) -> int:
        """What the payer holds acknowledged by the payee."""
        return int((await self.info("payer", channel))["acked_total"])

    async def total(self, role: str, channel: str) -> int:
        """`role`'s own total: what the payer sent, what the payee received."""
        info = await self.info(role, channel)
        return int(info["sent_total" if role == "payer" else "received_total"])

    async def crash(self, victim: PeerProcess, channel: str) -> int:
        """SIGKILL `victim` (if still alive) and start it again on its store and port;
        a lower bound of what the payee had acknowledged at the kill."""
        if victim is self.payer:
            # Read just before the kill: a lower bound of what was acknowledged at it.
            acked = await self.acked(channel)
            await victim.kill()
        else:
            await victim.kill()
            # Every acknowledgement the payer holds came from the payee before it died.
            acked = await self.acked(channel)
        await victim.start()
        return acked

    async def agreed(self, channel: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Wait until both sides hold the same newest state, every payment acknowledged;
        after `PATIENCE_S`, the views as they are (the check then reports the gap)."""

        async def views() -> tuple[dict[str, Any], dict[str, Any]]:
            return await self.info("payer", channel), await self.info("payee", channel)

        def same(pair: tuple[dict[str, Any], dict[str, Any]]) -> bool:
            payer, payee = pair
            return bool(payer["sent_total"] == payer["acked_total"] == payee["received_total"])

        with contextlib.suppress(TortureError):
            return await until(views, same, what="both sides on the newest state")
        return await views()

    async def settled_facts(self, channel: str, since: int) -> Facts:
        """Both sides' totals once they agree, and what the chain paid once the channel
        is closed and settled."""
        payer, payee = await self.agreed(channel)
        facts: Facts = {
            "sent": int(payer["sent_total"]),
            "acked_total": int(payer["acked_total"]),
            "received": int(payee["received_total"]),
        }
        return facts | await self.close_and_settle(channel, since)

    async def stale_close(
        self,
        rng: random.Random,
        channel: str,
        since: int,
        *,
        acked: int,
        payer_key: int,
        kill: Callable[[], Awaitable[None]],
    ) -> None:
        """The payer (dev account `payer_key`) closes on chain with a total below the
        `acked` one, while `kill` SIGKILLs the party that must challenge it."""
        stale = rng.randint(0, max(0, acked - 1))
        onchain = await self.world.onchain_channel(bytes.fromhex(channel[2:]), since)
        cheater = self.world.key(payer_key)

        async def cheat() -> None:
            await asyncio.sleep(0.3)
            await self.world.hub.close(cheater, onchain, stale, 0, None)

        async def killing() -> None:
            # From before the stale close lands to while the challenge is under way.
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            await kill()

        await asyncio.gather(cheat(), killing())

    async def close_and_settle(
        self, channel: str, since: int, *, payee_offline: int | None = None
    ) -> Facts:
        """Close (the payer asks; a dispute is let run out once both sides' newest
        proofs are on chain) and return what the chain paid. With `payee_offline`
        (the total the payee last held), the payee is not asked: it is away."""
        channel_id = bytes.fromhex(channel[2:])
        payer = await self.info("payer", channel)
        if payer["phase"] == "open":
            with contextlib.suppress(M2MPayError):  # the channel's phase tells below
                await self.payer.call({"cmd": "close", "channel": channel}, PATIENCE_S)

        async def newest() -> int:
            if payee_offline is not None:
                return payee_offline
            return int((await self.info("payee", channel))["received_total"])

        advanced = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2 * PATIENCE_S
        while (settled := await self.world.settled(channel_id, since)) is None:
            if loop.time() > deadline:
                raise TortureError(
                    f"channel {channel} not settled; the payee holds {await newest()}"
                )
            if not advanced and await self._defended(channel_id, since, await newest()):
                # Both parties' newest proofs are on chain: the rest of the challenge
                # period could change nothing, so let chain time run out.
                await self.world.ledger.advance_time(CHALLENGE_PERIOD + 10)
                advanced = True
            await asyncio.sleep(0.1)
        opened = await self.world.onchain_channel(channel_id, since)
        return {
            "deposit_a": opened.deposit_a,
            "settled_a": settled.balance_a,
            "settled_b": settled.balance_b,
        }

    async def _defended(self, channel: bytes, since: int, newest: int) -> bool:
        closes = [
            event
            for event in await self.world.hub.events(since)
            if isinstance(event, ChannelClosing | ChannelChallenged) and event.channel_id == channel
        ]
        if not closes:
            return False
        return max(event.transferred_a for event in closes) >= newest


class _Process(Protocol):
    async def start(self) -> object: ...

    async def stop(self) -> object: ...


class Attended:
    """A pair and the process it leans on (a device's host, a payee's watcher): started
    before the pair, stopped after it."""

    def __init__(self, attendant: _Process, pair: Pair) -> None:
        self._attendant = attendant
        self.pair = pair

    async def start(self) -> None:
        await self._attendant.start()
        await self.pair.start()

    async def stop(self) -> None:
        await self.pair.stop()
        with contextlib.suppress(M2MPayError, OSError):
            await self._attendant.stop()


class PairPhase(OnShared[Pair]):
    """A phase on the pair every payment and session phase uses in turn; each trial
    opens a fresh channel. `victim` is the one killed; the phase is named after it."""

    kind: str  # what the trials do while the victim dies

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim
        self.name = f"{self.kind}.{victim}"

    @property
    def pair(self) -> Pair:
        return self.shared

    async def _share(self, world: World) -> Pair:
        return await Pair.shared(world)

    def check(self, facts: Facts) -> str | None:
        return payment_violation(self.victim, facts)

    async def _finish(self, channel: str, since: int, acked: int) -> Facts:
        """The facts of a trial once the victim is back: its own total right after the
        restart, then both sides' once they agree and what the chain paid."""
        facts: Facts = {"acked": acked, "restored": await self.pair.total(self.victim, channel)}
        return facts | await self.pair.settled_facts(channel, since)


class OwnPair(OnOwn[Pair]):
    """A phase on a pair of its own (dev accounts of its own: the shared pair's nodes
    would see its channels), started by its `setup` and stopped by its `teardown`."""

    @property
    def pair(self) -> Pair:
        return self.own


class BesidePair(OnOwn[PeerProcess]):
    """A phase whose victim is a node process of its own that trades with the shared
    pair's nodes; the pair stays the world's, the process is stopped at teardown."""

    @property
    def shared_pair(self) -> Pair:
        """The shared pair, which `setup` started (`Pair.shared`)."""
        pair = self.world.shared["pair"]
        assert isinstance(pair, Pair)
        return pair


def payment_violation(victim: str, facts: Facts) -> str | None:
    """The payment invariants, from the facts a payment trial gathered:

    - `acked`: a lower bound of what the payee had acknowledged when `victim` died;
    - `restored`: a total read right after the restart (the killed payer's sent, the
      payee's received; for a watcher, the proof it holds);
    - `sent`, `acked_total`, `received`: both sides' views once they caught up;
    - `deposit_a`, `settled_a`, `settled_b`: what the chain's settlement paid.
    """
    acked, restored = facts["acked"], facts["restored"]
    if restored < acked:
        return (
            f"acknowledged payment lost: after the restart the {victim} holds {restored}, "
            f"{acked} was acknowledged before the kill"
        )
    sent, acked_total, received = facts["sent"], facts["acked_total"], facts["received"]
    if received < acked:
        return f"acknowledged payment lost: the payee holds {received} of {acked} acknowledged"
    if not sent == acked_total == received:
        return (
            f"the sides disagree on the newest state: payer sent {sent} "
            f"(acknowledged {acked_total}), payee received {received}"
        )
    expected = (facts["deposit_a"] - received, received)
    paid = (facts["settled_a"], facts["settled_b"])
    if paid != expected:
        return f"settled on chain {paid} differs from the newest proofs, which say {expected}"
    return None
