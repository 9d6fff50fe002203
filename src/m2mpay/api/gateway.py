"""What the API's handlers work with: the node, its sessions, the chain, and an event hub."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from m2mpay.access.broker import Broker
from m2mpay.access.feed_book import FeedBook
from m2mpay.access.keeper import GrantKeeper
from m2mpay.access.selling import FeedSeller
from m2mpay.api.auth import Credentials
from m2mpay.api.errors import ApiError, error_of, provided
from m2mpay.bus.events import (
    BusEvent,
    DeviceConnected,
    DeviceDisconnected,
    DeviceRegistered,
    DeviceStateChanged,
)
from m2mpay.bus.server import DeviceBus
from m2mpay.chain import Deployment, Ledger, TokenContract
from m2mpay.channel.outputs import ChannelEvent
from m2mpay.channel.state import ChannelState
from m2mpay.crypto import Address
from m2mpay.engine import EventFanOut
from m2mpay.errors import CryptoError, DeviceError, M2MPayError
from m2mpay.explorer import Explorer
from m2mpay.market.offer_book import OfferBook, ResaleTerms, SavedOffer
from m2mpay.market.registry_index import RegistryIndex
from m2mpay.market.resale import Resale
from m2mpay.market.transfer_follow import TransferSales
from m2mpay.node import Node
from m2mpay.plain import to_plain
from m2mpay.provenance.session_streams import KnownStream
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.stream import Offer, SessionInfo, SessionManager
from m2mpay.stream.outputs import SessionEvent
from m2mpay.stream.supply import SupplyFactory

__all__ = ["EventHub", "FeedDesk", "Gateway"]

log = logging.getLogger("m2mpay.api")


class EventHub:
    """Channel, session and device events, fanned out to every subscriber of the event
    stream.

    A subscriber that does not keep up loses its oldest events rather than holding
    the node back (the stream is for watching, the ledger of record is the node)."""

    def __init__(self, buffer: int = 10_000) -> None:
        self._buffer = buffer
        self._fanout: EventFanOut[dict[str, Any], None] = EventFanOut()

    def attach(self, node: Node, sessions: SessionManager) -> None:
        node.add_listener(self._on_channel)
        sessions.add_listener(self._on_session)

    def attach_bus(self, bus: DeviceBus) -> None:
        """`device` events: a device registered, came, went, or changed its state (a lamp
        lit), each with the device's state now."""

        def on_device(event: BusEvent) -> None:
            if isinstance(event, DeviceRegistered):
                address = event.device.address
            elif isinstance(event, DeviceConnected | DeviceDisconnected | DeviceStateChanged):
                address = event.device
            else:
                return  # acks and telemetry: the device's own business, not its state
            try:
                info = bus.device(address)
            except DeviceError:
                return  # connected before it registered: its registration will tell
            self.publish(
                "device",
                {
                    "t": "dev.state",
                    "device_id": info.address.checksum,
                    "name": info.name,
                    "online": info.connected,
                    "state": info.state,
                },
            )

        bus.add_listener(on_device)

    def _on_channel(self, event: ChannelEvent, state: ChannelState) -> None:
        if self._fanout.subscribed:  # nobody watching: no payment pays for its plain form
            # Totals mean nothing without their token: a reader scales them by its decimals.
            plain = to_plain(event, binary=False)
            self.publish("channel", {**plain, "asset": state.terms.asset.checksum})

    def _on_session(self, event: SessionEvent, _: SessionInfo) -> None:
        if self._fanout.subscribed:
            self.publish("session", to_plain(event, binary=False))

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        if self._fanout.subscribed:
            self._fanout.publish({"kind": kind, **data}, None)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        return self._fanout.subscribe(self._buffer)

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._fanout.unsubscribe(queue)


@dataclass(frozen=True, slots=True)
class FeedDesk:
    """What a node sells paid MQTT access with: its feeds, the grant keeper, the broker
    it administers, and where buyers and devices reach that broker (``host:port``)."""

    seller: FeedSeller
    keeper: GrantKeeper
    broker: Broker
    broker_at: str


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
    # Offers resold from another node's, by offer id; their terms are in the offer book.
    resales: dict[bytes, Resale] = field(default_factory=dict)
    # Paid MQTT access: the desk that sells it (None: this node sells none), and the
    # book of the feeds sold and bought, kept across restarts.
    feeds: FeedDesk | None = None
    feed_book: FeedBook | None = None
    # Provenance streams: where the node keeps them (None: it keeps none), and what
    # anchors their heads (None: their files carry no anchor proofs).
    streams: StreamStore | None = None
    stream_anchorer: StreamAnchorer | None = None
    # The streams our purchases' sellers told us of, opened, by stream id (an audit
    # follows a chain we bought from through them).
    streams_bought: Callable[[], Mapping[bytes, KnownStream]] | None = None
    # The ledger's JSON-RPC URL that stream codes name for readers (None: none given).
    public_rpc: str | None = None
    # The stream of a session we sell, by session id (None: not known to be written).
    session_stream: Callable[[bytes], bytes | None] | None = None
    # Offers bought by a plain transfer of their token to their device (None: none).
    transfer_sales: TransferSales | None = None
    # The service registry's index (None: the deployment has no registry), and where
    # this node's API is reached, which its listings name as their storefront.
    registry: RegistryIndex | None = None
    api_url: str | None = None
    # Asks the watcher this node feeds for its address (None: no watcher): what its
    # listings name unless told another.
    watcher_address: Callable[[], Awaitable[Address]] | None = None
    # The chain as an explorer reads it (None: made by the explorer's routes when first asked).
    explorer: Explorer | None = None

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
        supplies = provided(self.supplies, "no_devices", "this node has no device bus")
        try:
            return supplies(name, service)
        except (DeviceError, CryptoError) as exc:  # an unknown device or service
            status, body = error_of(exc)
            raise ApiError(
                status, body["error"]["code"], body["error"]["message"], field_name
            ) from None

    def resell(
        self,
        terms: ResaleTerms,
        meter: SupplyFactory,
        *,
        window: int | None = None,
        batch: int | None = None,
        offer: Offer | None = None,
    ) -> Resale:
        """Resell `terms.source` metered by `meter`: a new offer, or `offer` again after a
        restart (the sessions must be running, so that its sales are taken up)."""
        resale = Resale(
            self.sessions,
            terms.source,
            commission=terms.commission,
            meter=meter,
            purchase_budget=terms.purchase_budget,
            purchase_deposit=terms.purchase_deposit,
            endpoint=terms.endpoint,
        )
        published = resale.publish(window=window, batch=batch, offer=offer)
        self.resales[published.offer_id] = resale
        return resale

    def publish_saved(self, entries: list[SavedOffer]) -> None:
        """Publish again what the offer book kept from before a restart, each offer with
        its device (resales once the sessions run: see `resell`); an offer whose device
        is gone leaves the book."""
        assert self.supplies is not None
        assert self.offer_book is not None
        for entry in entries:
            name, _, service = entry.device.partition("/")
            try:
                supply = self.supplies(name, service)
                if entry.resale is None:
                    self.sessions.publish(entry.offer, supply)
                else:
                    self.resell(entry.resale, supply, offer=entry.offer)
            except M2MPayError as exc:
                log.warning("offer 0x%s not published again: %s", entry.offer.offer_id.hex(), exc)
                self.offer_book.remove(entry.offer.offer_id)

    async def close(self) -> None:
        """Before the sessions stop: stop the resales relaying (their links are durable)."""
        resales, self.resales = list(self.resales.values()), {}
        for resale in resales:
            await resale.close()
