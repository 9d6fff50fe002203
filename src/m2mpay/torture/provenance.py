"""The provenance phase: a seller writing each sale into a stream, its heads anchored on
chain, is SIGKILLed while it writes, while it anchors, or while it exports a stream.

After the restart every stream of the seller must verify with no gap, the session's
stream must record what the session sold (its units, its payments, its receipt), every
anchored head must stay provable on chain, an export file is whole or absent (and a
new export verifies), and the session's money invariants hold as in `session.seller`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any, Final

from m2mpay.bench.processes import PeerProcess
from m2mpay.errors import M2MPayError
from m2mpay.torture.pair import BesidePair, Pair
from m2mpay.torture.phase import Facts
from m2mpay.torture.sessions import (
    BATCH,
    RATE,
    exposure,
    offer_energy,
    session_ends,
    session_violation,
)
from m2mpay.torture.world import TortureError, World, until

__all__ = ["MOMENTS", "ProvenanceCrash", "provenance_violation"]

MOMENTS: Final = ("writing", "anchoring", "exporting")


class ProvenanceCrash(BesidePair):
    """The shared pair's payer buys from a seller of this phase (the victim), which
    writes its sales into provenance streams (`bench.stream_peer`)."""

    name = "provenance.seller"

    def __init__(self) -> None:
        super().__init__()
        self._offer: dict[str, Any] = {}
        self._trials = 0

    @property
    def seller(self) -> PeerProcess:
        """The phase's own process, the one its trials kill."""
        return self.own

    async def setup(self, world: World) -> None:
        self._world = world
        await Pair.shared(world)
        directory = world.files("provenance")
        seller = await self._start_own(
            world.peer(
                "provenance",
                "seller",
                world.keys.stream_seller,
                sessions=directory / "seller-sessions.sqlite3",
                streams=directory / "seller-streams.sqlite3",
                anchor=world.anchor,
            )
        )
        self._offer = await offer_energy(world, seller)

    def check(self, facts: Facts) -> str | None:
        return provenance_violation(facts)

    async def trial(self, rng: random.Random) -> Facts:
        world, seller = self.world, self.seller
        pair = Pair(world, self.shared_pair.payer, seller)
        since = await world.ledger.block_number()
        channel = await pair.open()
        target = rng.randint(4 * BATCH, 30 * BATCH)
        started = await pair.payer.call(
            {"cmd": "session_start", "offer": self._offer, "target_units": target}
        )
        session = started["session"]
        self._trials += 1
        export = world.files("provenance") / f"export-{self._trials}.jsonl"
        moment = rng.choice(MOMENTS)
        exporting = await self._until_moment(moment, rng, session, target, export)
        acked = await pair.crash(seller, channel)
        if exporting is not None:
            with contextlib.suppress(M2MPayError, asyncio.CancelledError):
                await exporting  # the answer never came: the process died
        # Offers are the application's: a restarted seller publishes its offer again.
        await seller.call({"cmd": "session_offer", "offer": self._offer, "rate": RATE})
        facts: Facts = {
            "moment": MOMENTS.index(moment),
            "target": target,
            "acked": acked,
            "restored": await pair.total("payee", channel),
        }
        facts |= await session_ends(session, {"bought": pair.payer, "sold": seller})
        facts["bought_exposure"] = await exposure(pair.payer, "payer")
        facts["sold_exposure"] = await exposure(seller, "payee")
        facts |= await pair.settled_facts(channel, since)
        return facts | await self._stream_facts(session, export)

    async def _until_moment(
        self, moment: str, rng: random.Random, session: str, target: int, export: Any
    ) -> asyncio.Task[dict[str, Any]] | None:
        """Wait for the kill's moment; an export under way is returned (to be reaped)."""
        seller = self.seller
        if moment == "writing":
            await asyncio.sleep(rng.uniform(0.0, 1.2 * target / RATE))
        elif moment == "anchoring":  # the last records written, their heads being anchored
            with contextlib.suppress(TortureError):
                await until(
                    lambda: seller.call({"cmd": "session_info", "session": session}),
                    lambda v: v["phase"] == "stopped",
                    what="the seller's session stopped",
                )
            await asyncio.sleep(rng.uniform(0.0, 0.6))
        else:
            await asyncio.sleep(rng.uniform(0.3, 1.0 * target / RATE))
            exporting = asyncio.ensure_future(
                seller.call({"cmd": "streams_export", "session": session, "path": str(export)})
            )
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            return exporting
        return None

    async def _stream_facts(self, session: str, export: Any) -> Facts:
        seller = self.seller

        def recorded(check: dict[str, Any]) -> bool:
            return bool(check["bad"]) or check["sessions"].get(session, {}).get("receipt") == 1

        check = await until(
            lambda: seller.call({"cmd": "streams_check"}), lambda c: True, what="streams"
        )
        with contextlib.suppress(TortureError):
            check = await until(
                lambda: seller.call({"cmd": "streams_check"}),
                recorded,
                what="the session's stream ending with its receipt",
            )
        stream = check["sessions"].get(session, {})
        left = await seller.call({"cmd": "streams_file", "path": str(export)})
        await seller.call({"cmd": "streams_export", "session": session, "path": str(export)})
        again = await seller.call({"cmd": "streams_file", "path": str(export)})
        return {
            "streams": int(check["streams"]),
            "streams_bad": int(check["bad"]),
            "anchored": int(check["anchored"]),
            "anchors_bad": int(check["anchors_bad"]),
            "stream_found": int(bool(stream)),
            "stream_units": int(stream.get("units", -1)),
            "stream_paid": int(stream.get("paid", -1)),
            "stream_receipt": int(stream.get("receipt", 0)),
            "export_left_ok": int(left["ok"]),
            "export_ok": int(again["exists"] and again["ok"]),
        }


def provenance_violation(facts: Facts) -> str | None:
    """The session's invariants (the seller was killed), then its stream's."""
    violation = session_violation("seller", facts)
    if violation is not None:
        return violation
    if facts["streams_bad"]:
        return (
            f"{facts['streams_bad']} of {facts['streams']} streams do not verify after the restart"
        )
    if not facts["stream_found"]:
        return "the session has no stream after the restart"
    recorded = (facts["stream_units"], facts["stream_paid"])
    if recorded != (facts["sold_units"], facts["sold_paid"]):
        return (
            f"the stream records {recorded} (units, paid), "
            f"the session sold {(facts['sold_units'], facts['sold_paid'])}"
        )
    if not facts["stream_receipt"]:
        return "the session's stream does not end with its receipt"
    if facts["anchors_bad"]:
        return f"{facts['anchors_bad']} of {facts['anchored']} anchored heads no longer prove"
    if not facts["export_left_ok"]:
        return "an export cut short left a file that does not verify"
    if not facts["export_ok"]:
        return "an export after the restart does not verify"
    return None
