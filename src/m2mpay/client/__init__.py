"""A small Python client of a node's HTTP API, used by the CLI, simulated devices and tests.

`NodeClient(url, token)` covers every route; answers are small frozen dataclasses
with amounts as `int` and addresses as `Address` (the API writes both as text).
They are the client's own types, not the gateway's pydantic models: importing
`m2mpay.api.models` runs the gateway package, which loads FastAPI, the node
and the session machinery, several times what a device needs. A test in
tests/client keeps both sets of types in step.
"""

from m2mpay.client.base import DEFAULT_URL
from m2mpay.client.channels import ChannelView, PaymentMade
from m2mpay.client.codec import Amount, decode, encode
from m2mpay.client.devices import DeviceView, ServiceView, TelemetryProofView, TelemetryRecord
from m2mpay.client.events import Event, EventStream
from m2mpay.client.feeds import (
    DeviceClientView,
    FeedPublished,
    FeedView,
    GrantBought,
    GrantView,
)
from m2mpay.client.node import NodeClient
from m2mpay.client.resales import ReconciliationView, ResaleView
from m2mpay.client.sessions import FlowView, OfferView, ReceiptView, SessionView
from m2mpay.client.status import ChainStatus, NodeStatus, PeerStatus, WatcherStatus
from m2mpay.client.wallet import (
    NATIVE,
    BalanceView,
    ContractsView,
    InfoView,
    TransferView,
    WalletView,
)

__all__ = [
    "DEFAULT_URL",
    "NATIVE",
    "Amount",
    "BalanceView",
    "ChainStatus",
    "ChannelView",
    "ContractsView",
    "DeviceClientView",
    "DeviceView",
    "Event",
    "EventStream",
    "FeedPublished",
    "FeedView",
    "FlowView",
    "GrantBought",
    "GrantView",
    "InfoView",
    "NodeClient",
    "NodeStatus",
    "OfferView",
    "PaymentMade",
    "PeerStatus",
    "ReceiptView",
    "ReconciliationView",
    "ResaleView",
    "ServiceView",
    "SessionView",
    "TelemetryProofView",
    "TelemetryRecord",
    "TransferView",
    "WalletView",
    "WatcherStatus",
    "decode",
    "encode",
]
