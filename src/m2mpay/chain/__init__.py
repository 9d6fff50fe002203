"""The ledger boundary, contract bindings and decoded chain events.

`Ledger` is the interface; `EmbeddedLedger` (py-evm in this process) and
`RpcLedger` (any JSON-RPC node) implement it. `ChannelHub`, `TokenContract`,
`TokenFactory`, `TelemetryAnchor`, `MeteredEscrow`, `ServiceRegistry` and `Exchange`
bind the contracts; `decode_hub_event` turns logs into plain records.
"""

from m2mpay.chain.anchor import AnchorBatch, AnchoredBatch, TelemetryAnchor, deploy_anchor
from m2mpay.chain.anvil import AnvilNode
from m2mpay.chain.artifacts import ContractArtifact, load_artifact
from m2mpay.chain.deploy import (
    Deployment,
    MarketContracts,
    deploy_contracts,
    deploy_market,
    load_deployment,
    save_deployment,
    verify_deployment,
)
from m2mpay.chain.devkeys import DEV_MNEMONIC, dev_keys
from m2mpay.chain.embedded import EmbeddedLedger
from m2mpay.chain.escrow import EscrowState, EscrowTerms, MeteredEscrow, deploy_escrow
from m2mpay.chain.events import (
    ChannelChallenged,
    ChannelClosing,
    ChannelDeposited,
    ChannelOpened,
    ChannelSettled,
    HubEvent,
    PayoutDeferred,
    Withdrawn,
    decode_hub_event,
)
from m2mpay.chain.exchange import Exchange, Pool, deploy_exchange
from m2mpay.chain.hub import NATIVE_TOKEN, ChannelHub, Closing, OnchainChannel, deploy_hub
from m2mpay.chain.ledger import BlockInfo, Ledger, LogEntry, Receipt, TransactionInfo
from m2mpay.chain.market_events import (
    ExchangeEvent,
    LiquidityAdded,
    LiquidityRemoved,
    PoolCreated,
    Swapped,
    decode_exchange_event,
    decode_factory_event,
)
from m2mpay.chain.registry import ServiceRegistry, deploy_registry
from m2mpay.chain.rpc import RpcLedger
from m2mpay.chain.token import TokenContract, deploy_token
from m2mpay.chain.token_factory import CreatedToken, TokenFactory, deploy_token_factory

__all__ = [
    "DEV_MNEMONIC",
    "NATIVE_TOKEN",
    "AnchorBatch",
    "AnchoredBatch",
    "AnvilNode",
    "BlockInfo",
    "ChannelChallenged",
    "ChannelClosing",
    "ChannelDeposited",
    "ChannelHub",
    "ChannelOpened",
    "ChannelSettled",
    "Closing",
    "ContractArtifact",
    "CreatedToken",
    "Deployment",
    "EmbeddedLedger",
    "EscrowState",
    "EscrowTerms",
    "Exchange",
    "ExchangeEvent",
    "HubEvent",
    "Ledger",
    "LiquidityAdded",
    "LiquidityRemoved",
    "LogEntry",
    "MarketContracts",
    "MeteredEscrow",
    "OnchainChannel",
    "PayoutDeferred",
    "Pool",
    "PoolCreated",
    "Receipt",
    "RpcLedger",
    "ServiceRegistry",
    "Swapped",
    "TelemetryAnchor",
    "TokenContract",
    "TokenFactory",
    "TransactionInfo",
    "Withdrawn",
    "decode_exchange_event",
    "decode_factory_event",
    "decode_hub_event",
    "deploy_anchor",
    "deploy_contracts",
    "deploy_escrow",
    "deploy_exchange",
    "deploy_hub",
    "deploy_market",
    "deploy_registry",
    "deploy_token",
    "deploy_token_factory",
    "dev_keys",
    "load_artifact",
    "load_deployment",
    "save_deployment",
    "verify_deployment",
]
