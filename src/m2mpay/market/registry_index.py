"""The node's index of the service registry: the listings standing now and every
party's score, from the registry's events.

The registry keeps the terms of a listing in its events only, so a node that wants to
search them must read the events. The index does so from the deployment's block: at
start it reads every event up to the head in one `get_logs`, then follows the chain
through the ledger's `subscribe`, which notices a reorganisation (`chain.forks`) and
delivers the logs of the blocks it replaced again as `removed`: those events are
dropped and the listings and scores computed again from the events left.

Nothing is kept on disk: the chain is the record, and a rebuild at start costs one
`get_logs` (a few thousand events for a busy registry), where a file of our own could
go stale across a reorganisation that happened while the node was stopped. The
follow starts `WINDOW_BLOCKS` below the head the rebuild read, so that a
reorganisation of the blocks it read in that rebuild is noticed as any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from m2mpay.chain.forks import WINDOW_BLOCKS
from m2mpay.chain.ledger import LogEntry, Receipt
from m2mpay.chain.registry import (
    Listing,
    RegistryEvent,
    Score,
    ServiceRegistry,
    ServiceTerms,
    listing_of,
)
from m2mpay.crypto import Address
from m2mpay.errors import LedgerUnavailable
from m2mpay.lifecycle import Startable, cancel_and_wait, run_in_background

__all__ = ["ListedService", "RatingEvent", "RegistryIndex"]

log = logging.getLogger("m2mpay.market")

_RETRY_S = (0.1, 5.0)
# An event's place in the chain: its block and its index in the block.
_Place = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ListedService:
    """A listing standing now: its terms as its newest event states them."""

    listing_id: int
    provider: Address
    terms: ServiceTerms
    listed_block: int
    updated_block: int


@dataclass(frozen=True, slots=True)
class RatingEvent:
    """One rating the registry accepted (its `Rated` event)."""

    rated: Address
    rater: Address
    session_id: bytes
    channel_id: bytes
    asset: Address
    rating: int
    value: int  # the weight it counted
    block_number: int


class RegistryIndex(Startable):
    """See the module docstring. `caught_up` is set once the rebuild at start is done."""

    def __init__(self, registry: ServiceRegistry, *, from_block: int = 0) -> None:
        self.registry = registry
        self._from_block = from_block
        self._events: dict[_Place, RegistryEvent] = {}
        self._listings: dict[int, ListedService] | None = None
        self._scores: dict[tuple[Address, Address], Score] | None = None
        self._cursor = from_block - 1
        self._tasks: set[asyncio.Task[None]] = set()
        self._follower: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()
        self._changed = asyncio.Condition()

    @property
    def address(self) -> Address:
        return self.registry.address

    @property
    def cursor(self) -> int:
        """The newest block whose registry events the index holds."""
        return self._cursor

    async def start(self) -> None:
        head = await self.rebuild()
        self._follower = run_in_background(
            self._tasks, self._follow(head), lambda exc: log.error("registry index: %r", exc)
        )

    async def stop(self) -> None:
        await cancel_and_wait(self._follower)
        self._follower = None

    async def rebuild(self) -> int:
        """Read every event from the first block to the head again; the head read."""
        ledger = self.registry.ledger
        head = await ledger.block_number()
        logs = await ledger.get_logs(
            address=self.registry.address, from_block=self._from_block, to_block=head
        )
        self._events = {(e.block_number, e.log_index): e for e in self.registry.decoded(logs)}
        self._changed_now(head)
        self.caught_up.set()
        return head

    async def _follow(self, head: int) -> None:
        delay = _RETRY_S[0]
        start = max(self._from_block, head - WINDOW_BLOCKS + 1)
        while True:
            try:
                async for entry in self.registry.ledger.subscribe(
                    address=self.registry.address, from_block=start
                ):
                    self.on_log(entry)
            except LedgerUnavailable as exc:
                # The ledger waits out most outages itself; one that reaches us is read
                # again whole once the chain is back, so nothing is missed.
                log.warning("registry index: lost the chain, reading again: %s", exc)
                await asyncio.sleep(delay)
                delay = min(2 * delay, _RETRY_S[1])
                try:
                    start = max(self._from_block, await self.rebuild() - WINDOW_BLOCKS + 1)
                except LedgerUnavailable:
                    continue

    def on_log(self, entry: LogEntry) -> None:
        """A registry log the chain delivered, or retracted (`removed`) after a
        reorganisation; applying one twice changes nothing."""
        place = (entry.block_number, entry.log_index)
        if entry.removed:
            if self._events.pop(place, None) is not None:
                log.warning("registry index: an event of block %d was reorganised away", place[0])
            self._changed_now(min(self._cursor, entry.block_number - 1), rewind=True)
            return
        for event in self.registry.decoded([entry]):
            self._events[place] = event
        self._changed_now(entry.block_number)

    def add_mined(self, receipt: Receipt) -> None:
        """What a transaction of ours logged, held before the follower brings it (so an
        answer shows it); the cursor stays, as the blocks before may hold more."""
        for event in self.registry.decoded(receipt.logs):
            self._events[(event.block_number, event.log_index)] = event
        self._changed_now(self._cursor)

    def _changed_now(self, cursor: int, *, rewind: bool = False) -> None:
        self._listings = self._scores = None
        if rewind or cursor > self._cursor:
            self._cursor = cursor
        run_in_background(self._tasks, self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, block: int, timeout: float = 30.0) -> None:
        """Until the index holds the events of `block` (a transaction of ours just mined)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self._cursor >= block)

    # -- what the events say

    def _ordered(self) -> Iterable[RegistryEvent]:
        return (self._events[place] for place in sorted(self._events))

    def _fold_listings(self) -> dict[int, ListedService]:
        standing: dict[int, ListedService] = {}
        for event in self._ordered():
            if event.name not in {"ServiceListed", "ServiceUpdated", "ServiceWithdrawn"}:
                continue
            listing_id = int(event.args["listing_id"])
            now: Listing | None = listing_of(event)
            if now is None:
                standing.pop(listing_id, None)
                continue
            before = standing.get(listing_id)
            if before is None and event.name == "ServiceUpdated":
                continue  # an update of a listing the index never saw made: not ours to invent
            listed = before.listed_block if before is not None else event.block_number
            standing[listing_id] = ListedService(
                listing_id, now.provider, now.terms, listed, event.block_number
            )
        return standing

    def _fold_scores(self) -> dict[tuple[Address, Address], Score]:
        scores: dict[tuple[Address, Address], Score] = {}
        for rating in self.ratings():
            key = (rating.rated, rating.asset)
            old = scores.get(key, Score(0, 0, 0))
            scores[key] = Score(
                old.weighted + rating.rating * rating.value,
                old.value + rating.value,
                old.ratings + 1,
            )
        return scores

    def listings(self) -> list[ListedService]:
        """The listings standing now, by id."""
        if self._listings is None:
            self._listings = self._fold_listings()
        return [self._listings[i] for i in sorted(self._listings)]

    def listing(self, listing_id: int) -> ListedService | None:
        if self._listings is None:
            self._listings = self._fold_listings()
        return self._listings.get(listing_id)

    def ratings(self) -> list[RatingEvent]:
        """Every rating, oldest first."""
        return [
            RatingEvent(
                Address(e.args["rated"]),
                Address(e.args["rater"]),
                bytes(e.args["session_id"]),
                bytes(e.args["channel_id"]),
                Address(e.args["asset"]),
                int(e.args["rating"]),
                int(e.args["value"]),
                e.block_number,
            )
            for e in self._ordered()
            if e.name == "Rated"
        ]

    def scores(self, address: Address) -> dict[Address, Score]:
        """`address`'s score in each asset it was rated in."""
        if self._scores is None:
            self._scores = self._fold_scores()
        return {asset: s for (rated, asset), s in self._scores.items() if rated == address}

    def score(self, address: Address, asset: Address) -> Score:
        return self.scores(address).get(asset, Score(0, 0, 0))

    def average(self, address: Address, asset: Address) -> Fraction | None:
        return self.score(address, asset).average
