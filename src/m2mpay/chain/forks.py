"""Noticing chain reorganisations: what a log follower delivered, and what we sent.

A follower that delivered a log has told its consumer a fact; if the block holding
it is reorganised away, the fact is gone and the consumer must hear so. `BlockWindow`
remembers the hashes of the recent blocks a follower read (its delivered logs' blocks
and each poll's head) and, once per poll, checks them against the chain: the newest
block it read still being there proves every older one is (a block names its parent).
When it is not, the window walks down to the newest block still in the chain (the
fork point) and hands back the logs it delivered above it, to be retracted.

`SentTransactions` remembers the signed bytes of the transactions this process sent,
so that one a reorganisation dropped can be broadcast again exactly as it was: the
same nonce makes it idempotent (it lands once, never twice, even where a node puts
dropped transactions back in its pool), and the sender's later nonces stay usable.
It also keeps what each was asked to do (`Intent`), to be sent once more under a new
nonce when another transaction took its nonce, and which one was sent in its place.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Final

from m2mpay.chain.ledger import LogEntry
from m2mpay.crypto import Address, PrivateKey

__all__ = ["BlockWindow", "Intent", "SentTransaction", "SentTransactions"]

log = logging.getLogger("m2mpay.chain")

WINDOW_BLOCKS: Final = 64  # how deep a reorganisation a follower can undo
_SENT_KEPT: Final = 256

# The hash a chain holds at a block number now (None: the chain is not that long).
HashAt = Callable[[int], Awaitable[bytes | None]]


class BlockWindow:
    """The recent blocks one follower read, and the logs it delivered from them."""

    def __init__(self, depth: int = WINDOW_BLOCKS, first_block: int = 0) -> None:
        self._depth = depth
        # Below the blocks held, the newest block the follower went past: where to
        # follow again from when none of those held is left in the chain.
        self._floor = first_block - 1
        self._trimmed = False
        self._hashes: dict[int, bytes] = {}
        self._delivered: dict[int, list[LogEntry]] = {}
        self._unchecked: set[int] = set()

    def saw_block(self, number: int, block_hash: bytes) -> None:
        """Note a block read this poll; it is checked against the chain on the next."""
        if not block_hash:
            return
        if self._hashes.get(number) != block_hash:
            self._hashes[number] = block_hash
            self._unchecked.add(number)
        newest = max(self._hashes)
        for old in [n for n in self._hashes if n <= newest - self._depth]:
            self._floor, self._trimmed = max(self._floor, old), True
            del self._hashes[old]
            self._delivered.pop(old, None)
            self._unchecked.discard(old)

    def delivered(self, entry: LogEntry) -> None:
        self.saw_block(entry.block_number, entry.block_hash)
        self._delivered.setdefault(entry.block_number, []).append(entry)

    async def fork_point(self, hash_at: HashAt) -> int | None:
        """The newest block this window read that is still in the chain, if any block it
        read is not (None: no reorganisation)."""
        if not self._hashes:
            return None
        newest = max(self._hashes)
        # Blocks read in the same poll as the newest were read from one chain only if
        # they were checked once against it: a reorganisation may fall between reads.
        gone = [
            n for n in sorted(self._unchecked | {newest}) if await hash_at(n) != self._hashes[n]
        ]
        if not gone:
            self._unchecked.clear()
            return None
        for number in sorted((n for n in self._hashes if n < gone[0]), reverse=True):
            if await hash_at(number) == self._hashes[number]:
                return number
        if self._trimmed:
            log.warning(
                "a reorganisation deeper than %d blocks: logs up to block %d cannot be retracted",
                self._depth,
                self._floor,
            )
        return self._floor

    def rewind(self, fork: int) -> list[LogEntry]:
        """Forget the blocks above `fork`; their delivered logs, newest first, as removed."""
        removed: list[LogEntry] = []
        for number in sorted((n for n in self._hashes if n > fork), reverse=True):
            del self._hashes[number]
            self._unchecked.discard(number)
            entries = self._delivered.pop(number, [])
            removed.extend(replace(entry, removed=True) for entry in reversed(entries))
        self._unchecked.clear()
        return removed


@dataclass(frozen=True, slots=True)
class Intent:
    """What a transaction was sent to do, apart from its nonce and fees."""

    signer: PrivateKey
    to: Address | None
    data: bytes
    gas: int
    value: int


@dataclass(frozen=True, slots=True)
class SentTransaction:
    sender: Address
    nonce: int
    raw: bytes
    intent: Intent | None = None
    mined_in: int | None = None  # the block its receipt named, once seen


class SentTransactions:
    """The signed transactions this process sent recently (see the module docstring)."""

    def __init__(self, kept: int = _SENT_KEPT) -> None:
        self._kept = kept
        self._sent: OrderedDict[bytes, SentTransaction] = OrderedDict()
        self._successors: OrderedDict[bytes, bytes] = OrderedDict()

    def sent(
        self, tx_hash: bytes, sender: Address, nonce: int, raw: bytes, intent: Intent | None = None
    ) -> None:
        self._sent[tx_hash] = SentTransaction(sender, nonce, raw, intent)
        while len(self._sent) > self._kept:
            self._sent.popitem(last=False)

    def get(self, tx_hash: bytes) -> SentTransaction | None:
        return self._sent.get(tx_hash)

    def forget(self, tx_hash: bytes) -> None:
        """No longer hold `tx_hash`: it is neither sent again nor repeated."""
        self._sent.pop(tx_hash, None)

    def replaced(self, tx_hash: bytes, successor: bytes) -> None:
        """`successor` was sent in place of `tx_hash`, which can no longer be mined: it
        is never broadcast again."""
        self._sent.pop(tx_hash, None)
        self._successors[tx_hash] = successor
        while len(self._successors) > self._kept:
            self._successors.popitem(last=False)

    def successor(self, tx_hash: bytes) -> bytes | None:
        """The newest transaction sent in place of `tx_hash`, if any was."""
        found = self._successors.get(tx_hash)
        while found is not None and found in self._successors:
            found = self._successors[found]
        return found

    def mined(self, tx_hash: bytes, block: int) -> None:
        known = self._sent.get(tx_hash)
        if known is not None:
            self._sent[tx_hash] = replace(known, mined_in=block)

    def possibly_dropped(self, fork: int) -> list[tuple[bytes, SentTransaction]]:
        """Transactions a reorganisation above `fork` may have dropped, in nonce order:
        those mined after it, and those whose receipt nobody has seen yet."""
        suspects = [
            (tx_hash, tx)
            for tx_hash, tx in self._sent.items()
            if tx.mined_in is None or tx.mined_in > fork
        ]
        return sorted(suspects, key=lambda item: (item[1].sender.checksum, item[1].nonce))
