"""The chain as an explorer reads it: blocks, transactions with their calls and events
decoded against the deployment's contracts, addresses, a channel's on-chain history,
search (`Explorer`)."""

from m2mpay.explorer.decode import CallView, EventView, KnownContracts, decode_call, decode_log
from m2mpay.explorer.explorer import (
    MAX_PAGE,
    AddressView,
    BlockPage,
    ChannelHistory,
    ChannelStep,
    Explorer,
    SearchHit,
    TokenBalance,
    TokenTransfer,
    TransactionView,
)

__all__ = [
    "MAX_PAGE",
    "AddressView",
    "BlockPage",
    "CallView",
    "ChannelHistory",
    "ChannelStep",
    "EventView",
    "Explorer",
    "KnownContracts",
    "SearchHit",
    "TokenBalance",
    "TokenTransfer",
    "TransactionView",
    "decode_call",
    "decode_log",
]
