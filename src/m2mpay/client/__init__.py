"""A small Python client of a node's HTTP API, used by the CLI, simulated devices and tests.

`NodeClient(url, token)` covers every route; answers are small frozen dataclasses
with amounts as `int` and addresses as `Address` (the API writes both as text).
They are the client's own types, not the gateway's pydantic models: importing
`m2mpay.api.models` runs the gateway package, which loads FastAPI, the node
and the session machinery, several times what a device needs. A test in
tests/client keeps both sets of types in step.
"""

from m2mpay.client.base import DEFAULT_URL
from m2mpay.client.channels import ChannelView, CommitmentMade, PaymentMade
from m2mpay.client.codec import Amount, decode, encode
from m2mpay.client.devices import DeviceView, ServiceView, TelemetryProofView, TelemetryRecord
from m2mpay.client.escrow import EscrowOutcomeView, EscrowView, sign_meter_reading
from m2mpay.client.events import Event, EventStream
from m2mpay.client.feeds import (
    DeviceClientView,
    FeedPublished,
    FeedView,
    GrantBought,
    GrantView,
    StorefrontView,
)
from m2mpay.client.market import (
    LiquidityView,
    PoolView,
    QuoteView,
    SwapView,
    TokenDetail,
    TokenView,
)
from m2mpay.client.node import NodeClient
from m2mpay.client.registry import ListedServiceView, OfferCheckView, RatingView, ScoreView
from m2mpay.client.resales import ReconciliationView, ResaleView
from m2mpay.client.sessions import FlowView, OfferView, ReceiptView, SessionView
from m2mpay.client.status import (
    ChainStatus,
    DisputeRecord,
    NodeStatus,
    PeerStatus,
    WatcherDisputes,
    WatcherStatus,
)
from m2mpay.client.streams import (
    AnchorCheckView,
    StreamAnchorView,
    StreamMessageList,
    StreamMessageView,
    StreamProblemView,
    StreamReaderLink,
    StreamSummary,
    StreamVerification,
    StreamView,
)
from m2mpay.client.transfer_sales import (
    TransferPurchaseView,
    TransferSaleList,
    TransferTermsView,
)
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
    "AnchorCheckView",
    "BalanceView",
    "ChainStatus",
    "ChannelView",
    "CommitmentMade",
    "ContractsView",
    "DeviceClientView",
    "DeviceView",
    "DisputeRecord",
    "EscrowOutcomeView",
    "EscrowView",
    "Event",
    "EventStream",
    "FeedPublished",
    "FeedView",
    "FlowView",
    "GrantBought",
    "GrantView",
    "InfoView",
    "LiquidityView",
    "ListedServiceView",
    "NodeClient",
    "NodeStatus",
    "OfferCheckView",
    "OfferView",
    "PaymentMade",
    "PeerStatus",
    "PoolView",
    "QuoteView",
    "RatingView",
    "ReceiptView",
    "ReconciliationView",
    "ResaleView",
    "ScoreView",
    "ServiceView",
    "SessionView",
    "StorefrontView",
    "StreamAnchorView",
    "StreamMessageList",
    "StreamMessageView",
    "StreamProblemView",
    "StreamReaderLink",
    "StreamSummary",
    "StreamVerification",
    "StreamView",
    "SwapView",
    "TelemetryProofView",
    "TelemetryRecord",
    "TokenDetail",
    "TokenView",
    "TransferPurchaseView",
    "TransferSaleList",
    "TransferTermsView",
    "TransferView",
    "WalletView",
    "WatcherDisputes",
    "WatcherStatus",
    "decode",
    "encode",
    "sign_meter_reading",
]
