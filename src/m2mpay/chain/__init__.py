"""The ledger boundary, contract bindings and decoded chain events.

`Ledger` is the interface; `EmbeddedLedger` (py-evm in this process) and
`RpcLedger` (any JSON-RPC node) implement it. `ChannelHub`, `TokenContract` and
`TelemetryAnchor` bind the contracts; `decode_hub_event` turns logs into plain records.
"""

from m2mpay.chain.anchor import AnchorBatch, AnchoredBatch, TelemetryAnchor, deploy_anchor
from m2mpay.chain.anvil import AnvilNode
from m2mpay.chain.artifacts import ContractArtifact, load_artifact
from m2mpay.chain.deploy import (
    Deployment,
    deploy_contracts,
    load_deployment,
    save_deployment,
    verify_deployment,
)
from m2mpay.chain.devkeys import DEV_MNEMONIC, dev_keys
from m2mpay.chain.embedded import EmbeddedLedger
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
from m2mpay.chain.hub import NATIVE_TOKEN, ChannelHub, Closing, OnchainChannel, deploy_hub
from m2mpay.chain.ledger import Ledger, LogEntry, Receipt
from m2mpay.chain.rpc import RpcLedger
from m2mpay.chain.token import TokenContract, deploy_token

__all__ = [
    "DEV_MNEMONIC",
    "NATIVE_TOKEN",
    "AnchorBatch",
    "AnchoredBatch",
    "AnvilNode",
    "ChannelChallenged",
    "ChannelClosing",
    "ChannelDeposited",
    "ChannelHub",
    "ChannelOpened",
    "ChannelSettled",
    "Closing",
    "ContractArtifact",
    "Deployment",
    "EmbeddedLedger",
    "HubEvent",
    "Ledger",
    "LogEntry",
    "OnchainChannel",
    "PayoutDeferred",
    "Receipt",
    "RpcLedger",
    "TelemetryAnchor",
    "TokenContract",
    "Withdrawn",
    "decode_hub_event",
    "deploy_anchor",
    "deploy_contracts",
    "deploy_hub",
    "deploy_token",
    "dev_keys",
    "load_artifact",
    "load_deployment",
    "save_deployment",
    "verify_deployment",
]
