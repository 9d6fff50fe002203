"""`GET /v1/status`: is this node well: its chain reachable, its peers connected, its
sessions running, its watcher reachable.

The router is made by the process that knows the node's watcher (`m2mpay node
--watcher`, composed in `m2mpay.cli.node`) and handed to the daemon among its extra
routes; it finds the gateway where `create_app` leaves it, on the app's state.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from m2mpay import __version__
from m2mpay.api.auth import BearerToken
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import Address, Hex32
from m2mpay.channel.state import FINAL_PHASES
from m2mpay.crypto import Address as NodeAddress
from m2mpay.errors import M2MPayError

__all__ = [
    "ChainStatus",
    "NodeStatus",
    "PeerStatus",
    "WatcherStatus",
    "WatcherToCheck",
    "status_routes",
]

_CHECK_TIMEOUT_S: Final = 5.0  # a status must answer even when the chain or watcher hangs


class _Reached(BaseModel):
    """Whether a service the node relies on answered just now, and if not, why."""

    reachable: bool
    problem: str | None = Field(description="Why it is not reachable.")


class ChainStatus(_Reached):
    chain: str = Field(description="CAIP-2 id, e.g. eip155:1337.")
    genesis_hash: Hex32
    ledger: str
    hub: Address
    token: Address
    block: int | None = Field(description="The newest block, when reachable.")


class PeerStatus(BaseModel):
    address: Address
    connected: bool = Field(description="An authenticated peer link is up now.")
    channels: int = Field(description="Channels with this peer not yet closed.")


class WatcherStatus(_Reached):
    url: str
    address: Address | None = Field(description="The watcher's own address, when reachable.")


class NodeStatus(BaseModel):
    address: Address
    version: str
    peer_endpoint: str | None
    chain: ChainStatus
    peers: list[PeerStatus]
    sessions_running: int
    watcher: WatcherStatus | None = Field(description="Null when the node has no watcher.")


@dataclass(frozen=True, slots=True)
class WatcherToCheck:
    """The watcher a node feeds its proofs to: where it is, and `ask`, which asks it
    afresh for its address (an `M2MPayError` when it cannot be reached)."""

    url: str
    ask: Callable[[], Awaitable[NodeAddress]]


def status_routes(watcher: WatcherToCheck | None = None) -> APIRouter:
    """The status route, reporting on `watcher` too if the node has one."""
    router = APIRouter(tags=["node"])

    async def reader(request: Request, token: BearerToken) -> None:
        await _gateway(request).credentials.reader(request, token)

    @router.get(
        "/v1/status",
        response_model=NodeStatus,
        dependencies=[Depends(reader)],
        summary="Chain, peers, sessions and watcher: is this node well",
    )
    async def status(request: Request) -> NodeStatus:
        gw = _gateway(request)
        chain, watched = await asyncio.gather(_chain(gw), _watcher(watcher))
        return NodeStatus(
            address=gw.node.address.checksum,
            version=__version__,
            peer_endpoint=gw.node.endpoint,
            chain=chain,
            peers=_peers(gw),
            sessions_running=sum(1 for s in gw.sessions.sessions() if not s.stopped_ms),
            watcher=watched,
        )

    return router


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _chain(gw: Gateway) -> ChainStatus:
    block: int | None = None
    problem: str | None = None
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            block = await gw.ledger.block_number()
    except TimeoutError:
        problem = f"no answer within {_CHECK_TIMEOUT_S:g} s"
    except M2MPayError as exc:
        problem = str(exc)
    return ChainStatus(
        chain=gw.ledger.caip2,
        genesis_hash="0x" + gw.ledger.genesis_hash.hex(),
        ledger=gw.ledger.description,
        hub=gw.deployment.hub.checksum,
        token=gw.deployment.token.checksum,
        reachable=block is not None,
        block=block,
        problem=problem,
    )


def _peers(gw: Gateway) -> list[PeerStatus]:
    node = gw.node
    live = Counter(c.peer for c in node.channels() if c.phase not in FINAL_PHASES)
    return [
        PeerStatus(address=peer.checksum, connected=node.is_connected(peer), channels=count)
        for peer, count in sorted(live.items())
    ]


async def _watcher(watcher: WatcherToCheck | None) -> WatcherStatus | None:
    if watcher is None:
        return None
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            address = await watcher.ask()
    except TimeoutError:
        problem = f"no answer within {_CHECK_TIMEOUT_S:g} s"
    except M2MPayError as exc:
        problem = str(exc)
    else:
        return WatcherStatus(
            url=watcher.url, reachable=True, address=address.checksum, problem=None
        )
    return WatcherStatus(url=watcher.url, reachable=False, address=None, problem=problem)
