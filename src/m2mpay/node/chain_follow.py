"""How a node keeps up with its chain: from its stored cursor to the head, then block by
block, every hub event about one of its channels fed to the machine as an input.

The cursor (with the block hashes the chain access keeps beside it, so that a
reorganisation while the node was stopped is noticed) is written to the log's meta
with the inputs it follows, so a restart resumes where the log ends and reads
nothing twice that counted. A rewind moves it back; an outage of the chain's node is
waited out and followed again from the cursor, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Final

from m2mpay.channel.inputs import ChainOpened, ChainRewound, Input, TxFailed
from m2mpay.channel.state import ChannelState
from m2mpay.crypto import Address
from m2mpay.errors import LedgerUnavailable
from m2mpay.node.chain_access import ChainAccess, ChainInput

__all__ = ["ChainFollower"]

log = logging.getLogger("m2mpay.node")

CURSOR_KEY: Final = "chain.cursor"
_RETRY_S: Final = 0.1
_RETRY_MAX_S: Final = 5.0


class ChainFollower:
    def __init__(
        self,
        chain: ChainAccess,
        me: Address,
        channels: Callable[[], Mapping[bytes, ChannelState]],
        handle: Callable[[Input], object],
        put_meta: Callable[[str, bytes], None],
        *,
        start_block: int,
    ) -> None:
        self._chain = chain
        self._me = me
        self._channels = channels
        self._handle = handle
        self._put_meta = put_meta
        self._cursor = start_block - 1
        self._unfinished_tx: list[tuple[bytes, str]] = []
        self.caught_up = asyncio.Event()

    @property
    def cursor(self) -> int:
        """The last block whose events are all in the log."""
        return self._cursor

    def restore(self, meta: Mapping[str, bytes]) -> None:
        """After recovery: the stored cursor, and the transactions the log says were
        under way (judged once the chain is read up to its head)."""
        cursor = meta.get(CURSOR_KEY)
        if cursor is not None:
            self._cursor = self._chain.restore_cursor(cursor)
        self._unfinished_tx = [(c, k) for c, s in self._channels().items() for k in s.pending_tx]

    async def run(self) -> None:
        delay = _RETRY_S
        while True:
            try:
                inputs, head = await self._chain.resume(self._cursor + 1, list(self._channels()))
                for inp in inputs:
                    self._on_input(inp)
                self._set_cursor(head)
                if not self.caught_up.is_set():
                    self._fail_unfinished_transactions()
                    self.caught_up.set()
                delay = _RETRY_S
                async for inp in self._chain.follow(head + 1):
                    self._on_input(inp)
            except LedgerUnavailable as exc:
                # The chain's node restarts (or the process hosting the embedded chain):
                # follow again from the cursor once it is back; nothing is skipped.
                log.warning("lost the chain, following again in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(2 * delay, _RETRY_MAX_S)

    def _on_input(self, inp: ChainInput) -> None:
        if isinstance(inp, ChainOpened):
            ours = self._me in (inp.a, inp.b)
        else:
            ours = inp.channel_id in self._channels()
        if ours:
            self._handle(inp)
        # Until a later block is done, its events may follow; a rewind's come again.
        self._set_cursor(inp.block_number - 1, rewind=isinstance(inp, ChainRewound))

    def _set_cursor(self, block: int, *, rewind: bool = False) -> None:
        if block > self._cursor or (rewind and block < self._cursor):
            self._cursor = block
            self._put_meta(CURSOR_KEY, self._chain.cursor_record(block))

    def _fail_unfinished_transactions(self) -> None:
        """Transactions logged before a restart and still not seen on chain never made it."""
        channels = self._channels()
        for channel, kind in self._unfinished_tx:
            if kind in channels[channel].pending_tx:
                self._handle(TxFailed(channel, kind, "interrupted by a restart"))
        self._unfinished_tx = []
