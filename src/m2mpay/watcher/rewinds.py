"""Reorganisations as the watcher's follower meets them.

The follower reads hub logs by block range, so it checks for itself what `subscribe`
checks for a node: `BlockWindow` holds the hashes of the recent blocks it read and
the logs it delivered from them, and each poll finds whether any of those blocks left
the chain. A channel whose logs a reorganisation retracted gets its view read again
from the chain as it now is; the watcher's own transactions the reorganisation
dropped are broadcast again (`Ledger.resend_dropped`), so a challenge still lands
with the nonce it had and later ones do not wait behind a gap.

The window starts empty when the watcher starts; what it had read before it stopped
is vouched for by the anchors stored with its cursor (`m2mpay.chain.anchors`). If the
newest is no longer in the chain, every watched channel's view is read again and the
follower reads on from the newest anchor still there.

One case the window cannot see: the watcher folds the events of its own transaction
from the receipt, possibly before the follower reads that block, and a block the
follower never read cannot be found missing. So each mined transaction of ours stays
unconfirmed until the follower delivers one of its logs; once the follower has read
past its block without delivering one, the block was replaced: the transaction is
sent again and the channel's view read again, as after any reorganisation.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final

from m2mpay.chain.anchors import Anchors
from m2mpay.chain.events import decode_hub_event
from m2mpay.chain.forks import WINDOW_BLOCKS, BlockWindow
from m2mpay.chain.ledger import Ledger, LogEntry
from m2mpay.crypto import Address
from m2mpay.watcher.core import ChainView, apply_event

__all__ = ["ForkWatch"]

_RECENT_BLOCKS: Final = WINDOW_BLOCKS


class ForkWatch:
    """What the watcher's follower read recently, checked against the chain each poll."""

    def __init__(self, ledger: Ledger, hub: Address, first_block: int, anchors: Anchors) -> None:
        self._ledger = ledger
        self._hub = hub
        self._window = BlockWindow(first_block=first_block) if ledger.may_reorganise else None
        self._anchors = anchors
        self._resumed = False  # whether the anchors of before the start were checked
        self._unknown_fork = False  # the fork was found by anchors: any channel may be hit
        self._head = -1
        # Transactions the follower delivered a log of recently: tx hash -> block.
        self._delivered: dict[bytes, int] = {}
        # Our mined transactions not yet delivered by the follower: tx hash -> (channel, block).
        self._unconfirmed: dict[bytes, tuple[bytes, int]] = {}

    async def fork_point(self) -> int | None:
        """The newest block read that the chain still holds, if some read block left it."""
        if not self._resumed:
            self._resumed = True
            fork = await self._anchors.fork_point(self._ledger.block_hash)
            if fork is not None:
                self._unknown_fork = True
                return fork
        if self._window is None:
            return None
        return await self._window.fork_point(self._ledger.block_hash)

    def rewind(self, fork: int, watched: Collection[bytes]) -> set[bytes]:
        """Forget what was read above `fork`; the channels whose logs it retracted (all
        of `watched` when the logs read before the start are not known)."""
        self._anchors.forget_from(fork + 1)
        if self._window is None:
            return set()
        channels = set(watched) if self._unknown_fork else set()
        self._unknown_fork = False
        for entry in self._window.rewind(fork):
            self._delivered.pop(entry.tx_hash, None)
            if len(entry.topics) >= 2:
                channels.add(entry.topics[1])
        # Their channels' views are read afresh: the chain's word replaces the receipt's.
        for tx_hash, (channel, block) in list(self._unconfirmed.items()):
            if block > fork:
                del self._unconfirmed[tx_hash]
                channels.add(channel)
        return channels

    def read(self, logs: Iterable[LogEntry]) -> None:
        """Logs the follower delivered (every hub log it read, in chain order)."""
        for entry in logs:
            if self._window is not None:
                self._window.delivered(entry)
            self._delivered[entry.tx_hash] = entry.block_number
            self._unconfirmed.pop(entry.tx_hash, None)

    async def saw_head(self, head: int) -> None:
        """Note the head of this poll, read before its logs: the next poll tells whether it
        was replaced, and the cursor stored up to it is vouched for by its hash."""
        if head == self._head:
            return
        self._head = head
        for tx_hash in [t for t, b in self._delivered.items() if b <= head - _RECENT_BLOCKS]:
            del self._delivered[tx_hash]
        if self._window is not None:
            block_hash = await self._ledger.block_hash(head)
            if block_hash is not None:
                self._window.saw_block(head, block_hash)
                self._anchors.saw(head, block_hash)

    def mined(self, tx_hash: bytes, channel: bytes, block: int) -> None:
        """Our transaction's receipt named `block`; its events were folded from it."""
        if self._ledger.may_reorganise and self._delivered.get(tx_hash) != block:
            self._unconfirmed[tx_hash] = (channel, block)

    def overdue(self, cursor: int) -> dict[bytes, int]:
        """Channels whose own mined transaction the follower read past without meeting it,
        and the lowest such block: it left the chain before the follower read it."""
        overdue: dict[bytes, int] = {}
        for tx_hash, (channel, block) in list(self._unconfirmed.items()):
            if block <= cursor:
                del self._unconfirmed[tx_hash]
                overdue[channel] = min(block, overdue.get(channel, block))
        return overdue

    async def view_of(self, channel: bytes, from_block: int) -> ChainView:
        """The channel's view folded afresh from every event the chain now holds."""
        view = ChainView()
        for entry in await self._ledger.get_logs(
            address=self._hub, from_block=from_block, to_block="latest", topics=[None, channel]
        ):
            event = decode_hub_event(entry)
            if event is not None:
                view = apply_event(view, event)
        return view
