"""What a device's host sessions deliver to `HostAccess.follow`: across sessions, no
input lost and none repeated.

No I/O here: `HostAccess` hands in what each session receives and asks where a new
session's history must start.
"""

from __future__ import annotations

import asyncio

from m2mpay.errors import LedgerUnavailable, UnsupportedOperation
from m2mpay.node.chain_access import ChainInput
from m2mpay.node.host_protocol import HostEvents

__all__ = ["HostFeed"]


class _Cursor:
    """How far the feed has got, to resume on a new session without a gap or a repeat.

    Inputs carry their block but no log index. Within a session the host sends them
    in chain order, so an input of block b means every block before b is complete;
    only the newest block may have been cut short. A new session is asked for the
    history from that block on, and its first `count` inputs of that block, which
    were delivered already, are skipped (the host sends a block's inputs in log
    order, live or from history alike).
    """

    def __init__(self, complete: int) -> None:
        self.complete = complete  # every input of blocks up to here is delivered
        self._count = 0  # inputs of block complete + 1 delivered
        self._skip = 0  # of those, how many the current session will send again

    def resume(self) -> int:
        """The block a new session's history must start from."""
        self._skip = self._count
        return self.complete + 1

    def admit(self, inp: ChainInput) -> bool:
        """Whether `inp` is new (it then counts as delivered)."""
        block = inp.block_number
        if block <= self.complete:
            return False
        if block == self.complete + 1 and self._skip > 0:
            self._skip -= 1
            return False
        if block > self.complete + 1:
            self.complete, self._count, self._skip = block - 1, 0, 0
        self._count += 1
        return True

    def completed(self, head: int) -> None:
        """A history up to block `head` is in: later copies of it are repeats."""
        if head > self.complete:
            self.complete, self._count, self._skip = head, 0, 0


class HostFeed:
    """The catch-up history, then every later input once, whatever sessions carry them."""

    def __init__(self) -> None:
        self._history: asyncio.Future[HostEvents] | None = None  # catch_up's, until answered
        self._history_from = 0
        self._cursor: _Cursor | None = None  # once caught up
        self._inputs: asyncio.Queue[ChainInput] = asyncio.Queue()

    def ask_history(self, from_block: int) -> asyncio.Future[HostEvents]:
        """The future the answer to the catch-up hello (from `from_block`) resolves."""
        if self._history is not None or self._cursor is not None:
            raise UnsupportedOperation("a HostAccess catches up once, then follows")
        self._history = asyncio.get_running_loop().create_future()
        self._history_from = from_block
        return self._history

    def give_up_history(self, reason: str) -> None:
        """Nobody waits for the history any more (a timeout, the link stopped)."""
        history, self._history = self._history, None
        if history is not None and not history.done():
            history.set_exception(LedgerUnavailable(reason))
            history.exception()  # its waiter may be gone; that is not an error

    def hello_from(self) -> int | None:
        """Where a new session's history must start (None: nobody follows yet).

        Called once per session, just before its hello is sent.
        """
        if self._history is not None:
            return self._history_from
        if self._cursor is not None:
            return self._cursor.resume()
        return None

    def received(self, events: HostEvents, *, reply: bool) -> None:
        """Take in what a session sent; `reply`: it answers that session's hello."""
        history = self._history
        if reply and history is not None:
            self._history = None
            self._cursor = _Cursor(events.head)
            history.set_result(events)
            return
        if self._cursor is None:
            return  # nobody follows
        for inp in events.inputs:
            if self._cursor.admit(inp):
                self._inputs.put_nowait(inp)
        if reply:
            self._cursor.completed(events.head)

    async def next(self) -> ChainInput:
        return await self._inputs.get()
