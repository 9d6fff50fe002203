"""`NodeClient`: every route of a node's HTTP API, one resource per mixin."""

from __future__ import annotations

from m2mpay.client.audit import AuditApi
from m2mpay.client.channels import ChannelApi
from m2mpay.client.devices import DeviceApi
from m2mpay.client.escrow import EscrowApi
from m2mpay.client.events import EventApi
from m2mpay.client.explorer import ExplorerApi
from m2mpay.client.feeds import FeedApi
from m2mpay.client.market import MarketApi
from m2mpay.client.registry import RegistryApi
from m2mpay.client.resales import ResaleApi
from m2mpay.client.sessions import SessionApi
from m2mpay.client.status import StatusApi
from m2mpay.client.streams import StreamApi
from m2mpay.client.transfer_sales import TransferSaleApi
from m2mpay.client.wallet import WalletApi

__all__ = ["NodeClient"]


class NodeClient(
    WalletApi,
    ChannelApi,
    SessionApi,
    ResaleApi,
    TransferSaleApi,
    FeedApi,
    EventApi,
    DeviceApi,
    StatusApi,
    StreamApi,
    AuditApi,
    EscrowApi,
    MarketApi,
    RegistryApi,
    ExplorerApi,
):
    """A node's HTTP API: `NodeClient(url, token=None, *, transport=None, timeout=120.0)`.

    One pooled keep-alive connection set per client, safe for concurrent calls; use it
    as `async with NodeClient(url, token) as node:` or call `aclose()`. Non-2xx answers
    raise `m2mpay.errors.ApiRefusal` (by status: `ApiUnauthorized`, `ApiNotFound`,
    `ApiConflict`, `ApiInvalidInput`, `ApiFailure`); a node that does not answer
    raises `NodeUnreachable`.
    """
