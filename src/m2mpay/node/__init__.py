"""The running node: wire + store + ledger + the channel machine, with effects in one place."""

from m2mpay.node.chain_access import ChainAccess, LedgerAccess
from m2mpay.node.info import ChannelInfo, PaymentHandle, PaymentWait
from m2mpay.node.node import Node, NodeConfig

__all__ = [
    "ChainAccess",
    "ChannelInfo",
    "LedgerAccess",
    "Node",
    "NodeConfig",
    "PaymentHandle",
    "PaymentWait",
]
