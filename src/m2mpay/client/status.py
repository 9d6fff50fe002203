"""Whether a node is well: its chain, peers, sessions and watcher (`GET /v1/status`);
what its watcher did on chain for it (`GET /v1/watcher/disputes`)."""

from __future__ import annotations

from dataclasses import dataclass

from m2mpay.client.base import ApiBase
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import Address

__all__ = [
    "ChainStatus",
    "DisputeRecord",
    "NodeStatus",
    "PeerStatus",
    "StatusApi",
    "WatcherDisputes",
    "WatcherStatus",
]


@dataclass(frozen=True, slots=True)
class ChainStatus:
    chain: str  # CAIP-2
    genesis_hash: str
    ledger: str
    hub: Address
    token: Address
    reachable: bool
    block: int | None  # the newest block, when reachable
    problem: str | None  # why it is not


@dataclass(frozen=True, slots=True)
class PeerStatus:
    address: Address
    connected: bool  # an authenticated peer link is up now
    channels: int  # channels with it not yet closed


@dataclass(frozen=True, slots=True)
class WatcherStatus:
    url: str
    reachable: bool
    address: Address | None
    problem: str | None


@dataclass(frozen=True, slots=True)
class NodeStatus:
    address: Address
    version: str
    peer_endpoint: str | None
    chain: ChainStatus
    peers: tuple[PeerStatus, ...]
    sessions_running: int
    watcher: WatcherStatus | None  # None: the node has no watcher


@dataclass(frozen=True, slots=True)
class DisputeRecord:
    id: int
    kind: str  # challenge, settle
    status: str  # submitted, mined, failed, interrupted
    channel_id: str
    beneficiary: Address | None
    transferred: Amount | None
    balance_a: Amount | None
    balance_b: Amount | None
    tx_hash: str | None
    block: int | None
    submitted_at_ms: int
    mined_at_ms: int | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class WatcherDisputes:
    watcher: str | None  # None: the node has no watcher
    reachable: bool
    problem: str | None
    disputes: tuple[DisputeRecord, ...]  # newest first, the node's channels only


class StatusApi(ApiBase):
    async def status(self) -> NodeStatus:
        """The node's chain (reachable?), peers (connected?), running sessions and watcher."""
        return decode(NodeStatus, await self._call("GET", "/v1/status"))

    async def watcher_disputes(self) -> WatcherDisputes:
        """The challenges and settlements the node's watcher sent for its channels."""
        return decode(WatcherDisputes, await self._call("GET", "/v1/watcher/disputes"))
