"""`GET /v1/status`: is this node well: its chain reachable, its peers connected, its
sessions running, its watcher reachable. `GET /v1/watcher/disputes`: what the watcher did on
chain (challenges, settlements) for this node's channels, as the watcher tells it.

The router is made by the process that knows the node's watcher (`m2mpay node
--watcher`, composed in `m2mpay.cli.node`) and handed to the daemon among its extra
routes; it finds the gateway where `create_app` leaves it, on the app's state.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, ValidationError

from m2mpay import __version__
from m2mpay.api.auth import BearerToken
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import Address, Amount, Hex32
from m2mpay.channel.state import FINAL_PHASES
from m2mpay.crypto import Address as NodeAddress
from m2mpay.errors import M2MPayError

__all__ = [
    "ChainStatus",
    "DisputeRecord",
    "NodeStatus",
    "PeerStatus",
    "WatcherDisputes",
    "WatcherStatus",
    "WatcherToCheck",
    "status_routes",
]

_Answer = TypeVar("_Answer")

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


class DisputeRecord(BaseModel):
    """One action the watcher took on chain for a channel of this node, as it reports it."""

    id: int = Field(ge=0)
    kind: Literal["challenge", "settle"]
    status: Literal["submitted", "mined", "failed", "interrupted"]
    channel_id: Hex32
    beneficiary: Address | None = Field(description="The watched party it acted for.")
    transferred: Amount | None = Field(description="The total its challenge proved.")
    balance_a: Amount | None
    balance_b: Amount | None
    tx_hash: Hex32 | None
    block: int | None = Field(ge=0, description="Where its transaction was mined.")
    submitted_at_ms: int = Field(ge=0)
    mined_at_ms: int | None = Field(ge=0)
    reason: str | None = Field(description="Why it failed, when it did.")


class WatcherDisputes(BaseModel):
    watcher: str | None = Field(description="The watcher's URL; null: the node has none.")
    reachable: bool
    problem: str | None = Field(description="Why the watcher could not be read.")
    disputes: list[DisputeRecord] = Field(description="Newest first; this node's channels only.")


@dataclass(frozen=True, slots=True)
class WatcherToCheck:
    """The watcher a node feeds its proofs to: where it is, `ask`, which asks it afresh
    for its address (an `M2MPayError` when it cannot be reached), and `disputes`, which
    asks it for every challenge and settlement it sent (the watcher's `DisputeView`s)."""

    url: str
    ask: Callable[[], Awaitable[NodeAddress]]
    disputes: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None


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

    @router.get(
        "/v1/watcher/disputes",
        response_model=WatcherDisputes,
        dependencies=[Depends(reader)],
        tags=["explorer"],
        summary="The watcher's challenges and settlements for this node's channels",
        description="Read from the watcher the node feeds (`m2mpay node --watcher`); "
        "`watcher` null when it has none, `reachable` false when it did not answer.",
    )
    async def disputes(request: Request) -> WatcherDisputes:
        return await _disputes(_gateway(request), watcher)

    return router


async def _disputes(gw: Gateway, watcher: WatcherToCheck | None) -> WatcherDisputes:
    if watcher is None or watcher.disputes is None:
        return WatcherDisputes(watcher=None, reachable=False, problem=None, disputes=[])
    told, problem = await _asked(watcher.disputes())
    if told is None:
        return WatcherDisputes(watcher=watcher.url, reachable=False, problem=problem, disputes=[])
    # The watcher serves many nodes: show only what it did for this one's channels.
    # It is another process: what it says is checked, never passed on unread.
    ours = {"0x" + c.channel_id.hex() for c in gw.node.channels()}
    records: list[DisputeRecord] = []
    for item in told:
        try:
            record = DisputeRecord.model_validate(item, strict=False)
        except ValidationError:
            continue  # one it got wrong says nothing of the others
        if record.channel_id.lower() in ours:
            records.append(record)
    records.sort(key=lambda r: r.id, reverse=True)
    return WatcherDisputes(watcher=watcher.url, reachable=True, problem=None, disputes=records)


async def _asked(question: Awaitable[_Answer]) -> tuple[_Answer, None] | tuple[None, str]:
    """What a service the node relies on answered, or why it did not (none of the
    questions asked here has None for an answer)."""
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            return await question, None
    except TimeoutError:
        return None, f"no answer within {_CHECK_TIMEOUT_S:g} s"
    except M2MPayError as exc:
        return None, str(exc)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _chain(gw: Gateway) -> ChainStatus:
    block, problem = await _asked(gw.ledger.block_number())
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
    address, problem = await _asked(watcher.ask())
    if address is None:
        return WatcherStatus(url=watcher.url, reachable=False, address=None, problem=problem)
    return WatcherStatus(url=watcher.url, reachable=True, address=address.checksum, problem=None)
