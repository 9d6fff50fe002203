"""The running node: wire + store + ledger + the channel machine, with effects in one place."""

from m2mpay.node.chain_link import ChainLink, LedgerLink
from m2mpay.node.info import ChannelInfo, PaymentHandle, PaymentWait
from m2mpay.node.node import Node, NodeConfig

__all__ = [
    "ChainLink",
    "ChannelInfo",
    "LedgerLink",
    "Node",
    "NodeConfig",
    "PaymentHandle",
    "PaymentWait",
]
