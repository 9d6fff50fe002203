"""The bodies of the explorer's routes (`m2mpay.api.routes_explorer`) and of the node's peers.

Hashes and ids are 0x-hex; amounts integer strings in the smallest unit; times the chain's
clock (block timestamps, seconds). A decoded call's or event's arguments are shown by name:
integers as decimal strings, bytes as 0x-hex, addresses checksummed, structs as objects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from m2mpay.api.models import Address, Amount, Hex32

__all__ = [
    "AddressDetail",
    "BlockPageView",
    "BlockView",
    "CallModel",
    "ChannelHistoryView",
    "ChannelStepView",
    "EventModel",
    "PeerList",
    "PeerView",
    "SearchView",
    "TokenHolding",
    "TransactionDetail",
    "TransferView",
]

_ARGS = Field(
    description="By name: integers as decimal strings, bytes as 0x-hex, structs as objects."
)


class BlockView(BaseModel):
    number: int = Field(ge=0)
    hash: Hex32
    parent_hash: Hex32
    timestamp: int = Field(ge=0, description="The chain's clock, seconds.")
    gas_used: int = Field(ge=0)
    gas_limit: int = Field(ge=0)
    transactions: list[Hex32] = Field(description="Their hashes, in the block's order.")


class BlockPageView(BaseModel):
    head: int = Field(ge=0, description="The newest block when the page was read.")
    blocks: list[BlockView] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="`before` for the next page (older blocks); null: none older."
    )


class CallModel(BaseModel):
    contract: str | None = Field(description="The known contract called; null: unknown.")
    function: str | None = Field(
        description="Null when the input names no function of that contract or does not "
        "decode: see the transaction's `input`."
    )
    args: dict[str, Any] = _ARGS
    selector: str = Field(description="The input's first 4 bytes, 0x-hex.")


class EventModel(BaseModel):
    address: Address = Field(description="The contract that emitted it.")
    contract: str | None = Field(description="The known contract it is; null: unknown.")
    event: str | None = Field(description="Null when no known contract declares it.")
    args: dict[str, Any] = _ARGS
    topics: list[str] = Field(description="Raw, 0x-hex.")
    data: str = Field(description="Raw, 0x-hex.")
    block: int = Field(ge=0)
    tx_hash: Hex32
    log_index: int = Field(ge=0)


class TransactionDetail(BaseModel):
    hash: Hex32
    sender: Address
    to: Address | None = Field(description="Null for a contract's deployment.")
    value: Amount = Field(description="Wei sent with it.")
    input: str = Field(description="0x-hex.")
    nonce: int = Field(ge=0)
    gas: int = Field(ge=0, description="Its gas limit.")
    block: int = Field(ge=0)
    block_hash: Hex32
    index: int = Field(ge=0, description="Its position in the block.")
    timestamp: int = Field(ge=0)
    status: Literal["success", "reverted"]
    gas_used: int = Field(ge=0)
    effective_gas_price: Amount
    contract_created: Address | None
    call: CallModel
    events: list[EventModel] = Field(description="Its logs, decoded where known, in order.")


class TokenHolding(BaseModel):
    token: Address
    symbol: str
    balance: Amount


class TransferView(BaseModel):
    token: Address
    sender: Address
    receiver: Address
    value: Amount
    block: int = Field(ge=0)
    tx_hash: Hex32
    log_index: int = Field(ge=0)


class AddressDetail(BaseModel):
    address: Address
    balance: Amount = Field(description="Wei.")
    is_contract: bool
    contract: str | None = Field(
        description="The deployment's contract it is (`ChannelHub`, `Token`…), `unknown` "
        "for code of another; null for an account."
    )
    tokens: list[TokenHolding] = Field(description="Its non-zero balances in the known tokens.")
    transfers: list[TransferView] = Field(
        description="Its newest transfers of the known tokens, in or out, newest first "
        "(50 at most)."
    )


class ChannelStepView(BaseModel):
    event: str | None = Field(description="`ChannelOpened`, `ChannelDeposited`, … ")
    args: dict[str, Any] = _ARGS
    block: int = Field(ge=0)
    tx_hash: Hex32
    log_index: int = Field(ge=0)
    timestamp: int = Field(ge=0)


class ChannelHistoryView(BaseModel):
    channel_id: Hex32
    events: list[ChannelStepView] = Field(description="The hub's events of it, in chain order.")


class SearchView(BaseModel):
    kind: Literal["block", "transaction", "channel", "address"]
    id: str = Field(
        description="What its route takes: a block's number, a transaction's hash, a "
        "channel's id, an address."
    )


class PeerView(BaseModel):
    address: Address
    endpoint: str | None = Field(description="Where the node reaches it; null: not known.")
    connected: bool
    channels: int = Field(ge=0, description="Its channels with this node not yet settled.")


class PeerList(BaseModel):
    peers: list[PeerView]
