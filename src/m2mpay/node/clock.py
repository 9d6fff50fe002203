"""The channels that wait on the clock, and the ticks that tell them the time: a
proposal expires, a cooperative close that gets no answer turns unilateral, a
challenge period ends. A tick carries our clock (ms) and the chain's (s), the
chain's never read as behind ours."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from m2mpay.channel.inputs import Input, Tick
from m2mpay.channel.state import ChannelState, Phase
from m2mpay.engine import now_ms
from m2mpay.errors import LedgerError
from m2mpay.node.chain_access import ChainAccess

__all__ = ["ChannelClock"]

log = logging.getLogger("m2mpay.node")

_TIMED_PHASES: Final = frozenset({Phase.PROPOSED, Phase.ACCEPTED, Phase.CLOSING, Phase.DISPUTED})


class ChannelClock:
    def __init__(self, chain: ChainAccess, handle: Callable[[Input], object]) -> None:
        self._chain = chain
        self._handle = handle
        self._timed: set[bytes] = set()

    def changed(self, channel: bytes, state: ChannelState) -> None:
        if state.phase in _TIMED_PHASES:
            self._timed.add(channel)
        else:
            self._timed.discard(channel)

    async def tick(self) -> None:
        if not self._timed:
            return
        try:
            chain_time = max(await self._chain.chain_time(), int(time.time()))
        except LedgerError as exc:
            log.warning("cannot read the chain clock: %s", exc)
            return
        now = now_ms()
        for channel in list(self._timed):
            self._handle(Tick(channel, now, chain_time))
