"""`Explorer`: the chain read as an explorer shows it, through any `Ledger`.

Everything is read from the chain when asked, nothing is kept but the list of tokens the
deployment's factory made (read on from where it was last read): a page of blocks reads
those blocks only, by number down from the head, never a scan from genesis.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Final, Literal

from m2mpay.chain import (
    BlockInfo,
    Deployment,
    Ledger,
    TokenContract,
    TransactionInfo,
    load_artifact,
)
from m2mpay.chain.market_events import decode_factory_event
from m2mpay.crypto import Address
from m2mpay.errors import LedgerError, M2MPayError
from m2mpay.explorer.decode import (
    CallView,
    EventView,
    KnownContracts,
    decode_call,
    decode_log,
)

__all__ = [
    "MAX_PAGE",
    "AddressView",
    "BlockPage",
    "ChannelHistory",
    "ChannelStep",
    "Explorer",
    "SearchHit",
    "TokenBalance",
    "TokenTransfer",
    "TransactionView",
]

MAX_PAGE: Final = 100
MAX_TRANSFERS: Final = 50  # an address's newest token transfers shown
_TRANSFER_TOPIC: Final = bytes.fromhex(
    "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
)
_HUB: Final = load_artifact("ChannelHub").interface
# The hub's events that index a channel's id first (its payouts index a recipient there).
_CHANNEL_TOPICS: Final = [
    _HUB.event_topic(name)
    for name in (
        "ChannelOpened",
        "ChannelDeposited",
        "ChannelClosing",
        "ChannelChallenged",
        "ChannelSettled",
    )
]
_HEX32: Final = re.compile(r"^0[xX][0-9a-fA-F]{64}$")
_HEX20: Final = re.compile(r"^0[xX][0-9a-fA-F]{40}$")
_NUMBER: Final = re.compile(r"^[0-9]{1,20}$")


@dataclass(frozen=True, slots=True)
class BlockPage:
    """Blocks newest first; `next_before` is the cursor of the page after (None: no more)."""

    head: int
    blocks: tuple[BlockInfo, ...]
    next_before: int | None


@dataclass(frozen=True, slots=True)
class TransactionView:
    transaction: TransactionInfo
    timestamp: int
    call: CallView
    events: tuple[EventView, ...]


@dataclass(frozen=True, slots=True)
class TokenBalance:
    token: Address
    symbol: str
    balance: int


@dataclass(frozen=True, slots=True)
class TokenTransfer:
    token: Address
    sender: Address
    receiver: Address
    value: int
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class AddressView:
    address: Address
    balance: int  # wei
    contract: str | None  # the known contract's name; "unknown" for code we do not know
    tokens: tuple[TokenBalance, ...]
    transfers: tuple[TokenTransfer, ...]  # newest first, at most MAX_TRANSFERS


@dataclass(frozen=True, slots=True)
class ChannelStep:
    event: EventView
    timestamp: int


@dataclass(frozen=True, slots=True)
class ChannelHistory:
    channel_id: bytes
    steps: tuple[ChannelStep, ...]  # the hub's events of the channel, in chain order


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: Literal["block", "transaction", "channel", "address"]
    id: str  # what the matching route takes: a block number, a hash, an address


class Explorer:
    """The chain as an explorer reads it, with the deployment's contracts known."""

    def __init__(self, ledger: Ledger, deployment: Deployment) -> None:
        self.ledger = ledger
        self.deployment = deployment
        self._tokens: dict[Address, str] = {deployment.token: deployment.token_symbol}
        self._tokens_read_to = -1  # the factory's logs are read through this block
        self._tokens_lock = asyncio.Lock()

    async def tokens(self) -> dict[Address, str]:
        """The deployment's token and every token its factory made, with their symbols."""
        market = self.deployment.market
        if market is None:
            return dict(self._tokens)
        async with self._tokens_lock:
            head = await self.ledger.block_number()
            if head > self._tokens_read_to:
                logs = await self.ledger.get_logs(
                    address=market.token_factory, from_block=self._tokens_read_to + 1, to_block=head
                )
                for log in logs:
                    try:
                        created = decode_factory_event(log, market.token_factory)
                    except M2MPayError:
                        continue  # not what it claims: no token of ours
                    if created is not None:
                        self._tokens[created.token] = created.symbol
                self._tokens_read_to = head
        return dict(self._tokens)

    async def known(self) -> KnownContracts:
        return KnownContracts.of(self.deployment, await self.tokens())

    async def blocks(self, before: int | None = None, limit: int = 25) -> BlockPage:
        """Up to `limit` blocks below `before` (default: from the head), newest first."""
        limit = max(1, min(limit, MAX_PAGE))
        head = await self.ledger.block_number()
        top = head if before is None else min(before - 1, head)
        if top < 0:
            return BlockPage(head, (), None)
        numbers = range(top, max(top - limit, -1), -1)
        found = await asyncio.gather(*(self.ledger.block(n) for n in numbers))
        blocks = tuple(b for b in found if b is not None)
        last = numbers[-1]
        return BlockPage(head, blocks, last if last > 0 else None)

    async def block(self, ref: int | bytes) -> BlockInfo | None:
        return await self.ledger.block(ref)

    async def transaction(self, tx_hash: bytes) -> TransactionView | None:
        """A transaction with its call and every log decoded."""
        tx = await self.ledger.transaction(tx_hash)
        if tx is None:
            return None
        known, timestamp = await asyncio.gather(self.known(), self._time_of(tx.block_number))
        return TransactionView(
            transaction=tx,
            timestamp=timestamp,
            call=decode_call(tx.to, tx.input, known),
            events=tuple(decode_log(log, known) for log in tx.logs),
        )

    async def address(self, address: Address) -> AddressView:
        tokens = await self.tokens()
        order = sorted(tokens)
        balance, code, held = await asyncio.gather(
            self.ledger.balance(address),
            self.ledger.code(address),
            asyncio.gather(*(self._token_balance(token, address) for token in order)),
        )
        contract = None
        if code:
            contract = (await self.known()).name_of(address) or "unknown"
        return AddressView(
            address=address,
            balance=balance,
            contract=contract,
            tokens=tuple(
                TokenBalance(token, tokens[token], amount)
                for token, amount in zip(order, held, strict=True)
                if amount
            ),
            transfers=await self._transfers(address, order),
        )

    async def _token_balance(self, token: Address, holder: Address) -> int:
        try:
            return await TokenContract(self.ledger, token).balance_of(holder)
        except (M2MPayError, ValueError):
            return 0  # a token that does not answer holds nothing we can show

    async def _transfers(
        self, address: Address, tokens: list[Address]
    ) -> tuple[TokenTransfer, ...]:
        if not tokens:
            return ()
        topic = bytes(12) + address
        sent, received = await asyncio.gather(
            self.ledger.get_logs(address=tokens, from_block=0, topics=[_TRANSFER_TOPIC, topic]),
            self.ledger.get_logs(
                address=tokens, from_block=0, topics=[_TRANSFER_TOPIC, None, topic]
            ),
        )
        unique = {(log.block_number, log.log_index): log for log in (*sent, *received)}
        transfers: list[TokenTransfer] = []
        for key in sorted(unique, reverse=True):
            log = unique[key]
            if (
                len(log.topics) != 3
                or len(log.data) != 32
                or any(any(t[:12]) for t in log.topics[1:])
            ):
                continue  # not an ERC-20 Transfer (an ERC-721 one indexes its value)
            transfers.append(
                TokenTransfer(
                    token=log.address,
                    sender=Address(log.topics[1][12:]),
                    receiver=Address(log.topics[2][12:]),
                    value=int.from_bytes(log.data, "big"),
                    block_number=log.block_number,
                    tx_hash=log.tx_hash,
                    log_index=log.log_index,
                )
            )
            if len(transfers) == MAX_TRANSFERS:
                break
        return tuple(transfers)

    async def channel(self, channel_id: bytes) -> ChannelHistory | None:
        """The hub's events of one channel, in chain order; None for a channel never opened."""
        logs = await self.ledger.get_logs(
            address=self.deployment.hub, from_block=0, topics=[_CHANNEL_TOPICS, channel_id]
        )
        if not logs:
            return None
        known = await self.known()
        blocks = sorted({log.block_number for log in logs})
        times = dict(zip(blocks, await asyncio.gather(*map(self._time_of, blocks)), strict=True))
        steps = tuple(ChannelStep(decode_log(log, known), times[log.block_number]) for log in logs)
        return ChannelHistory(channel_id, steps)

    async def _time_of(self, number: int) -> int:
        block = await self.ledger.block(number)
        return block.timestamp if block is not None else 0

    async def search(self, query: str) -> SearchHit | None:
        """What `query` names: a transaction, block or channel by its 32-byte hash or id,
        an address, a block by number. Raises `ValueError` for a query of no such form."""
        text = query.strip()
        if _NUMBER.match(text):
            number = int(text)
            return (
                SearchHit("block", str(number))
                if number <= await self.ledger.block_number()
                else None
            )
        if _HEX20.match(text):
            return SearchHit("address", Address(text).checksum)
        if not _HEX32.match(text):
            raise ValueError("a block number, an address or a 32-byte 0x-hex hash")
        key = bytes.fromhex(text[2:])
        tx, block, history = await asyncio.gather(
            self.ledger.transaction(key), self.ledger.block(key), self._opened(key)
        )
        hex_key = "0x" + key.hex()
        if tx is not None:
            return SearchHit("transaction", hex_key)
        if block is not None:
            return SearchHit("block", str(block.number))
        return SearchHit("channel", hex_key) if history else None

    async def _opened(self, channel_id: bytes) -> bool:
        try:
            logs = await self.ledger.get_logs(
                address=self.deployment.hub, from_block=0, topics=[_CHANNEL_TOPICS[0], channel_id]
            )
        except LedgerError:
            return False
        return bool(logs)
