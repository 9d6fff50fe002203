"""The chain as a node's explorer shows it: blocks, transactions with their calls and
events decoded, addresses, a channel's history on chain, search; and the node's peers.

Hashes and ids are 0x-hex strings; amounts integers in the smallest unit; times the
chain's clock in seconds. Decoded arguments come as the node shows them: integers as
decimal strings, bytes as 0x-hex, structs as dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from m2mpay.client.base import ApiBase, address_text, decode_items, given, path_id
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import Address

__all__ = [
    "AddressDetail",
    "BlockPage",
    "BlockView",
    "CallView",
    "ChannelHistory",
    "ChannelStep",
    "EventView",
    "ExplorerApi",
    "PeerView",
    "SearchHit",
    "TokenHolding",
    "TransactionDetail",
    "TransferView",
]


@dataclass(frozen=True, slots=True)
class BlockView:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    gas_used: int
    gas_limit: int
    transactions: tuple[str, ...]  # their hashes, in order


@dataclass(frozen=True, slots=True)
class BlockPage:
    head: int
    blocks: tuple[BlockView, ...]  # newest first
    next_before: int | None  # `before` of the next (older) page; None: no more


@dataclass(frozen=True, slots=True)
class CallView:
    contract: str | None  # the deployment's contract called; None: unknown
    function: str | None  # None: shown raw
    args: dict[str, Any]
    selector: str


@dataclass(frozen=True, slots=True)
class EventView:
    address: Address
    contract: str | None
    event: str | None  # None: no known contract declares it
    args: dict[str, Any]
    topics: tuple[str, ...]
    data: str
    block: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class TransactionDetail:
    hash: str
    sender: Address
    to: Address | None  # None: a deployment
    value: Amount
    input: str
    nonce: int
    gas: int
    block: int
    block_hash: str
    index: int
    timestamp: int
    status: Literal["success", "reverted"]
    gas_used: int
    effective_gas_price: Amount
    contract_created: Address | None
    call: CallView
    events: tuple[EventView, ...]


@dataclass(frozen=True, slots=True)
class TokenHolding:
    token: Address
    symbol: str
    balance: Amount


@dataclass(frozen=True, slots=True)
class TransferView:
    token: Address
    sender: Address
    receiver: Address
    value: Amount
    block: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class AddressDetail:
    address: Address
    balance: Amount  # wei
    is_contract: bool
    contract: str | None  # the deployment's contract it is, "unknown", or None (an account)
    tokens: tuple[TokenHolding, ...]
    transfers: tuple[TransferView, ...]  # newest first


@dataclass(frozen=True, slots=True)
class ChannelStep:
    event: str | None
    args: dict[str, Any]
    block: int
    tx_hash: str
    log_index: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class ChannelHistory:
    channel_id: str
    events: tuple[ChannelStep, ...]  # in chain order


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: Literal["block", "transaction", "channel", "address"]
    id: str


@dataclass(frozen=True, slots=True)
class PeerView:
    address: Address
    endpoint: str | None
    connected: bool
    channels: int


class ExplorerApi(ApiBase):
    """The explorer's calls, named `explorer_…` on the client where a bare name (`block`,
    `address`) would read as the node's own."""

    async def explorer_blocks(
        self, *, before: int | None = None, limit: int | None = None
    ) -> BlockPage:
        """Blocks newest first, below `before` (the last page's `next_before`)."""
        params: dict[str, str | int] = {
            k: v for k, v in given(before=before, limit=limit).items() if isinstance(v, int)
        }
        return decode(BlockPage, await self._call("GET", "/v1/explorer/blocks", params=params))

    async def explorer_block(self, ref: int | str) -> BlockView:
        """A block by number or 0x-hex hash."""
        path = f"/v1/explorer/blocks/{path_id(str(ref))}"
        return decode(BlockView, await self._call("GET", path))

    async def explorer_transaction(self, tx_hash: str) -> TransactionDetail:
        path = f"/v1/explorer/transactions/{path_id(tx_hash)}"
        return decode(TransactionDetail, await self._call("GET", path))

    async def explorer_address(self, address: Address | str) -> AddressDetail:
        path = f"/v1/explorer/addresses/{path_id(address_text(address))}"
        return decode(AddressDetail, await self._call("GET", path))

    async def channel_history(self, channel_id: str | bytes) -> ChannelHistory:
        path = f"/v1/explorer/channels/{path_id(channel_id)}"
        return decode(ChannelHistory, await self._call("GET", path))

    async def explorer_search(self, query: str) -> SearchHit:
        """What `query` names: a block number, an address, a transaction's, block's or
        channel's 32-byte hash or id (`ApiNotFound` when the chain holds none)."""
        params: dict[str, str | int] = {"q": query}
        return decode(SearchHit, await self._call("GET", "/v1/explorer/search", params=params))

    async def peers(self) -> list[PeerView]:
        return decode_items(PeerView, await self._call("GET", "/v1/peers"), "peers")
