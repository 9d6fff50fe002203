"""What a node needs of the chain, behind one small interface.

A node with its own ledger connection uses `LedgerAccess`. A device that holds only
keys uses `m2mpay.node.host.HostAccess`: the same needs, met by a host over the
wire. Either way the node sees the chain as machine inputs (decoded hub events)
and hands it transactions to carry out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection
from dataclasses import fields
from typing import Final

from m2mpay.chain.anchors import Anchors, parse_cursor
from m2mpay.chain.events import (
    ChannelChallenged,
    ChannelClosing,
    ChannelDeposited,
    ChannelOpened,
    ChannelSettled,
    HubEvent,
    decode_hub_event,
)
from m2mpay.chain.hub import ChannelHub
from m2mpay.chain.ledger import Ledger, LogEntry
from m2mpay.channel.inputs import (
    ChainChallenged,
    ChainClosing,
    ChainDeposited,
    ChainOpened,
    ChainRewound,
    ChainSettled,
)
from m2mpay.channel.outputs import TxRequest
from m2mpay.channel.rewinding import ChainFact, chain_view
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import LedgerUnavailable
from m2mpay.node.effects import Funder, execute

__all__ = [
    "ChainAccess",
    "ChainInput",
    "LedgerAccess",
    "hub_event_input",
    "hub_inputs",
    "log_input",
]

ChainInput = ChainFact | ChainRewound

log = logging.getLogger("m2mpay.node")


# The input each hub event about a channel makes: its fields are the event's of the same
# names, but for `asset`, which the hub calls `token`.
_INPUT_OF: Final[dict[type[HubEvent], type[ChainFact]]] = {
    ChannelOpened: ChainOpened,
    ChannelDeposited: ChainDeposited,
    ChannelClosing: ChainClosing,
    ChannelChallenged: ChainChallenged,
    ChannelSettled: ChainSettled,
}
_EVENT_FIELD: Final = {"asset": "token"}


def hub_event_input(event: HubEvent) -> ChainFact | None:
    """The machine input a hub event makes (None for events that are not about a channel)."""
    kind = _INPUT_OF.get(type(event))
    if kind is None:
        return None
    return kind(*(getattr(event, _EVENT_FIELD.get(f.name, f.name)) for f in fields(kind)))


def log_input(entry: LogEntry) -> ChainFact | None:
    """The machine input a hub log makes (None for logs that are not about a channel)."""
    event = decode_hub_event(entry)
    return hub_event_input(event) if event is not None else None


async def hub_inputs(
    ledger: Ledger, hub: Address, from_block: int, to_block: int
) -> list[ChainInput]:
    """The machine inputs of the hub's logs from `from_block` to `to_block`, in order."""
    if to_block < from_block:
        return []
    entries = await ledger.get_logs(address=hub, from_block=from_block, to_block=to_block)
    return [inp for entry in entries if (inp := log_input(entry)) is not None]


class ChainAccess(ABC):
    """The chain as a node sees it."""

    @property
    @abstractmethod
    def chain_id(self) -> int: ...

    @property
    @abstractmethod
    def hub(self) -> Address: ...

    @property
    @abstractmethod
    def genesis_hash(self) -> bytes:
        """The chain's genesis hash, which peers compare in the handshake."""

    @abstractmethod
    async def start(self) -> None:
        """Ready to answer: `chain_id`, `hub` and `genesis_hash` are known after this."""

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def catch_up(self, from_block: int) -> tuple[list[ChainInput], int]:
        """Every channel input from `from_block` to the head, and the head's number."""

    def restore_cursor(self, stored: bytes) -> int:
        """The cursor from its stored form (`cursor_record`), keeping what vouches for it."""
        return parse_cursor(stored)[0]

    def cursor_record(self, cursor: int) -> bytes:
        """The stored form of `cursor`: a link that sees block hashes adds some."""
        return str(cursor).encode()

    async def resume(
        self, from_block: int, channels: Collection[bytes]
    ) -> tuple[list[ChainInput], int]:
        """`catch_up`, after checking that the blocks before `from_block` are still those
        read: if not, `ChainRewound` inputs for `channels` come first, then the events
        from the fork point on. A link that cannot tell just catches up."""
        return await self.catch_up(from_block)

    @abstractmethod
    def follow(self, from_block: int) -> AsyncIterator[ChainInput]:
        """Channel inputs as blocks are mined, from `from_block` on.

        When a reorganisation takes back an event it delivered, a `ChainRewound` with
        the channel's view before the event's block comes first; the new chain's
        events from that block on follow.
        """

    @abstractmethod
    async def chain_time(self) -> int:
        """The chain clock (newest block timestamp), for challenge deadlines."""

    @abstractmethod
    async def execute(self, tx: TxRequest) -> None:
        """Carry out a transaction; raises `LedgerError` (with the reason) if it failed."""


_VIEW_RETRY_S: Final = (0.05, 1.0)  # first and longest pause while the chain is away
_VIEW_BATCH: Final = 1_000  # channel ids per topic-filtered log request


class LedgerAccess(ChainAccess):
    """A direct connection: the node reads the chain and pays for its own transactions."""

    def __init__(self, ledger: Ledger, hub: Address, key: PrivateKey) -> None:
        self._ledger = ledger
        self._hub = ChannelHub(ledger, hub)
        self._key = key
        self._funder = Funder(self._hub, key)
        self._anchors = Anchors()

    @property
    def chain_id(self) -> int:
        return self._ledger.chain_id

    @property
    def hub(self) -> Address:
        return self._hub.address

    @property
    def genesis_hash(self) -> bytes:
        return self._ledger.genesis_hash

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    async def start(self) -> None:
        """The ledger's lifecycle belongs to whoever created it."""

    async def stop(self) -> None:
        """The ledger's lifecycle belongs to whoever created it."""

    def restore_cursor(self, stored: bytes) -> int:
        cursor, anchors = parse_cursor(stored)
        self._anchors = Anchors(anchors)
        return cursor

    def cursor_record(self, cursor: int) -> bytes:
        return self._anchors.record(cursor)

    async def catch_up(self, from_block: int) -> tuple[list[ChainInput], int]:
        head = await self._ledger.block_number()
        # Read before the logs: if the head is replaced meanwhile, this hash is the old
        # one and the next start reads again rather than trust a block it never read.
        head_hash = await self._ledger.block_hash(head) if self._ledger.may_reorganise else None
        inputs = await hub_inputs(self._ledger, self._hub.address, from_block, head)
        if head_hash is not None:
            self._anchors.saw(head, head_hash)
        return inputs, head

    async def resume(
        self, from_block: int, channels: Collection[bytes]
    ) -> tuple[list[ChainInput], int]:
        # A chain that never reorganises leaves no anchors: nothing to check.
        fork = await self._anchors.fork_point(self._ledger.block_hash)
        if fork is None:
            return await self.catch_up(from_block)
        fork = min(fork, from_block - 1)
        log.warning(
            "the chain replaced blocks this node had read (after block %d): reading again", fork
        )
        # Ours that the new chain lacks go again, as they would had we been following.
        await self._ledger.resend_dropped(max(fork, 0))
        rewinds: list[ChainInput] = list(await self.channel_views(channels, fork + 1))
        inputs, head = await self.catch_up(fork + 1)
        return rewinds + inputs, head

    async def follow(self, from_block: int) -> AsyncIterator[ChainInput]:
        vouch = self._ledger.may_reorganise
        async for entry in self._ledger.subscribe(address=self._hub.address, from_block=from_block):
            if vouch and entry.removed:
                self._anchors.forget_from(entry.block_number)
            elif vouch:
                self._anchors.saw(entry.block_number, entry.block_hash)
            inp = log_input(entry)
            if inp is None:
                continue
            if entry.removed:
                yield await self._view_once_reachable(inp.channel_id, entry.block_number)
            else:
                yield inp

    async def _view_once_reachable(self, channel_id: bytes, before_block: int) -> ChainRewound:
        # The follower has already forgotten the retracted log: failing here would lose
        # the rewind, so an outage is waited out as the follower itself does.
        delay = _VIEW_RETRY_S[0]
        while True:
            try:
                return await self.channel_view(channel_id, before_block)
            except LedgerUnavailable:
                await asyncio.sleep(delay)
                delay = min(2 * delay, _VIEW_RETRY_S[1])

    async def channel_view(self, channel_id: bytes, before_block: int) -> ChainRewound:
        """What the chain now shows of a channel in the blocks before `before_block`."""
        [view] = await self.channel_views([channel_id], before_block)
        return view

    async def channel_views(
        self, channels: Collection[bytes], before_block: int
    ) -> list[ChainRewound]:
        """`channel_view` of many channels, with one log request per batch of them."""
        ids = list(channels)
        facts: dict[bytes, list[ChainFact]] = {channel: [] for channel in ids}
        for start in range(0, len(ids) if before_block > 0 else 0, _VIEW_BATCH):
            for entry in await self._ledger.get_logs(
                address=self._hub.address,
                from_block=0,
                to_block=before_block - 1,
                topics=[None, ids[start : start + _VIEW_BATCH]],
            ):
                fact = log_input(entry)
                if fact is not None and fact.channel_id in facts:
                    facts[fact.channel_id].append(fact)
        now_ms = int(time.time() * 1000)
        return [chain_view(channel, facts[channel], before_block, now_ms) for channel in ids]

    async def chain_time(self) -> int:
        timestamp = await self._ledger.block_timestamp()
        self._funder.saw_chain_time(timestamp)
        return timestamp

    async def execute(self, tx: TxRequest) -> None:
        await execute(self._hub, self._key, tx, self._funder)
