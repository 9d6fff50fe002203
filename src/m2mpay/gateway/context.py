"""What the API's handlers work with: the node, its sessions, the chain, and an event hub."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from m2mpay.chain import Deployment, Ledger, TokenContract
from m2mpay.channel.outputs import ChannelEvent
from m2mpay.channel.plain import to_plain
from m2mpay.channel.state import ChannelState
from m2mpay.errors import CryptoError, DeviceError
from m2mpay.gateway.auth import Credentials
from m2mpay.gateway.errors import ApiError, error_of
from m2mpay.gateway.offer_book import OfferBook
from m2mpay.node import Node
from m2mpay.stream import SessionInfo, SessionManager
from m2mpay.stream.outputs import SessionEvent
from m2mpay.stream.resale import Resale
from m2mpay.stream.supply import SupplyFactory

__all__ = ["EventHub", "Gateway"]


class EventHub:
    """Channel and session events, fanned out to every subscriber of the event stream.

    A subscriber that does not keep up loses its oldest events rather than holding
    the node back (the stream is for watching, the ledger of record is the node)."""

    def __init__(self, buffer: int = 10_000) -> None:
        self._buffer = buffer
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def attach(self, node: Node, sessions: SessionManager) -> None:
        node.add_listener(self._on_channel)
        sessions.add_listener(self._on_session)

    def _on_channel(self, event: ChannelEvent, _: ChannelState) -> None:
        self.publish("channel", to_plain(event, binary=False))

    def _on_session(self, event: SessionEvent, _: SessionInfo) -> None:
        self.publish("session", to_plain(event, binary=False))

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        if not self._subscribers:
            return
        item = {"kind": kind, **data}
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._buffer)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)


@dataclass
class Gateway:
    """A running node as the API sees it."""

    node: Node
    sessions: SessionManager
    ledger: Ledger
    deployment: Deployment
    credentials: Credentials
    dev_chain: bool = False
    events: EventHub = field(default_factory=EventHub)
    # The device behind an offer: (device id, service) → what supplies each session.
    supplies: Callable[[str, str], SupplyFactory] | None = None
    offer_book: OfferBook | None = None  # published offers, kept across restarts
    # Offers resold from another node's, by offer id; in memory only (see routes_resales).
    resales: dict[bytes, Resale] = field(default_factory=dict)

    @property
    def token(self) -> TokenContract:
        return TokenContract(self.ledger, self.deployment.token)

    def device_supply(self, device: str | None, field_name: str) -> SupplyFactory:
        """What a registered device's service (`device/service`, named by the request
        field `field_name`) supplies each session with: 422 if malformed, 409 without a
        device bus, 404 for an unknown device or service, each naming the field."""
        name, _, service = (device or "").partition("/")
        if not name or not service or "/" in service:
            raise ApiError(
                422,
                "invalid_input",
                f"{field_name} must name a registered `device/service`",
                field_name,
            )
        if self.supplies is None:
            raise ApiError(409, "no_devices", "this node has no device bus")
        try:
            return self.supplies(name, service)
        except (DeviceError, CryptoError) as exc:  # an unknown device or service
            status, body = error_of(exc)
            raise ApiError(
                status, body["error"]["code"], body["error"]["message"], field_name
            ) from None

    async def close(self) -> None:
        """Before the sessions stop: end what lives only in memory here (the resales)."""
        resales, self.resales = list(self.resales.values()), {}
        for resale in resales:
            await resale.close()
