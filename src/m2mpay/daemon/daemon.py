"""The node daemon: a ledger, the contracts, a node with its sessions, and the HTTP API.

`Daemon(config, key).start()` connects the ledger (the embedded chain of the data
dir, hosted here or by the process that already hosts it, or `rpc_url`), finds or
(on a dev chain) deploys the contracts, opens the stores, starts the node and its
session manager, and serves the API. `stop()` undoes it in reverse order; a new
`start()` on the same data dir resumes every channel and session.

Every node indexes its deployment's service registry (`m2mpay.market.registry_index`),
rebuilt from the chain at each start: it keeps nothing in the data dir.

Every node sells paid MQTT access too (`m2mpay.daemon.access`): on its own Mosquitto
by default, on a broker given by URL, or not at all (`MqttConfig(enabled=False)`).

Data dir layout: `keystore/` (the key, encrypted), `api-token.sha256`,
`node.sqlite3` (channels), `sessions.sqlite3`, `streams.db` (the provenance streams of
the sessions sold, and their anchor batches; in the node store's database instead when
`store` is a PostgreSQL URL), `streams-bought.json` (what the sellers of
our purchases told us of theirs, keys wrapped for our reader key), `devices.sqlite3`
(the device bus: registrations, commands, telemetry), `transfer-sales.sqlite3` (offers
sold to plain transfers, each transfer counted, the follower's cursor), `offers.json`,
`feeds.json` (the feeds sold, with their offers, and those bought, without passwords),
`grants.sqlite3` (the grants on the broker), `mqtt/` (the node's own Mosquitto: config, dynsec file,
admin credentials, log), `ports.json` (the API and peer ports the system chose, kept for
the next start), and, unless `chain_dir` or
`rpc_url` says otherwise, the embedded chain with `deployments.json`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from fastapi import APIRouter

from m2mpay.access.paywall import App
from m2mpay.api.app import create_app
from m2mpay.api.auth import Credentials, new_token
from m2mpay.api.fast import create_asgi
from m2mpay.api.gateway import Gateway
from m2mpay.api.routes_devices import device_routes
from m2mpay.asgi import AsgiServer
from m2mpay.bus.server import DeviceBus
from m2mpay.bus.sqlite import SqliteDeviceStore
from m2mpay.chain import Deployment, Ledger, ServiceRegistry, TelemetryAnchor
from m2mpay.chain.provision import ensure_deployment, is_dev_chain
from m2mpay.chain.shared import connect_ledger, served_url
from m2mpay.crypto import PrivateKey
from m2mpay.daemon.access import MqttConfig, PaidAccess
from m2mpay.daemon.paywall import NodePaywall, PaywallConfig
from m2mpay.daemon.ports import KeptPorts
from m2mpay.daemon.session_streams import StreamKeeper
from m2mpay.explorer import Explorer
from m2mpay.lifecycle import Startable
from m2mpay.market.offer_book import OfferBook, save_json
from m2mpay.market.registry_index import RegistryIndex
from m2mpay.market.transfer_follow import TransferSales
from m2mpay.market.transfer_store import TransferSaleStore
from m2mpay.node import LedgerAccess, Node, NodeConfig
from m2mpay.provenance.anchoring import AnchorConfig
from m2mpay.provenance.session_chain import BoughtStreams
from m2mpay.provenance.session_streams import SessionStreams, SessionStreamsConfig
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_postgres import PostgresStreamStore
from m2mpay.provenance.stream_sqlite import SqliteStreamStore
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.provenance.telemetry import TelemetryBatcher, TelemetryConfig
from m2mpay.store import PostgresStore, Store, open_store
from m2mpay.stream import SessionManager
from m2mpay.wire import WebSocketTransport

__all__ = ["Daemon", "DaemonConfig"]

log = logging.getLogger("m2mpay.daemon")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    data_dir: Path
    # The embedded chain's dir, or with `rpc_url` where the contracts are recorded;
    # nodes sharing it share one deployment (default: the data dir).
    chain_dir: Path | None = None
    rpc_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8402  # the HTTP API; 0: any free port
    peer_host: str = "127.0.0.1"
    peer_port: int = 0  # the wire, for other nodes; 0: any free port
    codec: str = "cbor"
    public_reads: bool = False
    store: str | None = None  # node store location (default: a SQLite file in the data dir)
    telemetry_interval_s: float = 60.0  # anchor device telemetry (and stream heads) this often
    # How often a sale's meter and payments are written into its provenance stream.
    streams: SessionStreamsConfig = field(default_factory=SessionStreamsConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)  # paid MQTT access
    # The JSON-RPC URL the streams' QR codes name for readers to check anchors against
    # (default: the embedded chain this node serves, never an `rpc_url`, which may hold
    # a provider's key).
    public_rpc_url: str | None = None
    # How often the chain is read for transfers to the devices sold by transfer.
    transfer_poll_s: float = 0.5
    # The HTTP 402 paywall under /x402/ on the API's port (off unless a price is given).
    paywall: PaywallConfig = field(default_factory=PaywallConfig)

    @property
    def deployments_dir(self) -> Path:
        return self.chain_dir or self.data_dir


class Daemon(Startable):
    """See the module docstring. `new_token` is set when this start made the API token."""

    def __init__(
        self, config: DaemonConfig, key: PrivateKey, *, extra: Sequence[APIRouter] = ()
    ) -> None:
        self.config = config
        self.key = key
        self._extra = extra
        self.new_token: str | None = None
        self.deployed_now = False
        self._ledger: Ledger | None = None
        self._node: Node | None = None
        self._sessions: SessionManager | None = None
        self._bus: DeviceBus | None = None
        # The provenance streams (one per session sold), held for the API as `streams`.
        self.streams: StreamStore | None = None
        self.stream_keeper: StreamKeeper | None = None
        self._stream_anchorer: StreamAnchorer | None = None
        self._server: AsgiServer | None = None
        self.gateway: Gateway | None = None
        # What start() brought up, each pushed as it starts: stop() undoes them in
        # reverse order, however far start() got.
        self._started = contextlib.AsyncExitStack()

    @property
    def url(self) -> str:
        return _running(self._server).url

    @property
    def node(self) -> Node:
        return _running(self._node)

    @property
    def sessions(self) -> SessionManager:
        return _running(self._sessions)

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ports = KeptPorts(config.data_dir)
        started = self._started
        try:
            self._ledger = ledger = await connect_ledger(
                data_dir=None if config.rpc_url else config.deployments_dir,
                rpc_url=config.rpc_url,
            )
            started.push_async_callback(ledger.stop)
            deployment, self.deployed_now = await ensure_deployment(ledger, config.deployments_dir)
            node_store = open_store(config.store or config.data_dir / "node.sqlite3")
            self._node = node = Node(
                self.key,
                LedgerAccess(ledger, deployment.hub, self.key),
                node_store,
                transport=WebSocketTransport(
                    host=config.peer_host,
                    port=ports.port("peer", config.peer_host, config.peer_port),
                ),
                config=NodeConfig(codec=config.codec),
            )
            started.push_async_callback(node.stop)
            await node.start()
            # Streams before the sessions, closed after them: a sale's last records are
            # written as the sessions stop.
            self.streams = streams = await self._stream_store(ledger, deployment, node_store)
            # The bus before the sessions: resumed sessions find their devices there.
            self._bus = bus = self._device_bus(ledger, deployment)
            started.push_async_callback(bus.stop)
            await bus.start()
            # The broker and the grant keeper before the sessions, stopped after them:
            # a session's grant is its device.
            access = PaidAccess(config.data_dir, self.key, config.mqtt)
            started.push_async_callback(access.stop)
            await access.start()
            self._sessions = sessions = SessionManager(
                node, open_store(config.data_dir / "sessions.sqlite3")
            )
            started.push_async_callback(sessions.stop)
            self.gateway = gateway = await self._gateway(ledger, deployment, node, sessions)
            started.push_async_callback(gateway.close)  # the resales, before their sessions
            self._give_streams(gateway, ledger, streams)
            gateway.supplies = bus.supply_factory
            gateway.events.attach_bus(bus)
            gateway.transfer_sales = await self._transfer_sales(ledger, bus)
            book = gateway.offer_book = OfferBook(config.data_dir / "offers.json")
            saved = book.load()
            gateway.publish_saved([entry for entry in saved if entry.resale is None])
            gateway.feeds = access.sell(sessions)  # resumed sessions find their grants
            gateway.feed_book = access.book
            await sessions.start()
            # Resales read back which purchase supplies which sale from the recovered
            # sessions, so they are published once those run.
            gateway.publish_saved([entry for entry in saved if entry.resale is not None])
            routes = [device_routes(gateway, bus), *self._extra]
            app = create_app(gateway, extra=routes)
            self._server = AsgiServer(
                await self._paywall(create_asgi(gateway, app), node, bus, ledger, deployment),
                host=config.host,
                port=ports.port("api", config.host, config.port),
                name="node API",
            )
            started.push_async_callback(self._server.stop)
            ports.keep("api", await self._server.start())
            gateway.api_url = self.url  # what its listings name as its storefront
            ports.keep("peer", node.endpoint)
            # Once the API serves: an answer to a buyer names where its stream file is.
            # It catches up on the sales that started before.
            self.stream_keeper = keeper = self._stream_keeper(streams, sessions, gateway)
            started.push_async_callback(keeper.stop)  # before the sessions stop
            keeper.start()
            gateway.streams_bought = keeper.all_known
            gateway.session_stream = keeper.streams.stream_of
        except BaseException:
            await self.stop()
            raise
        log.info("node %s serving %s on %s", self.key.address, self.url, ledger.caip2)

    async def _paywall(
        self, api: App, node: Node, bus: DeviceBus, ledger: Ledger, deployment: Deployment
    ) -> App:
        """The API, behind the HTTP 402 paywall of its /x402/ paths when one is priced."""
        config = self.config
        if not config.paywall.enabled:
            return api
        paid = NodePaywall(
            api, config.paywall, node=node, bus=bus, ledger=ledger,
            asset=deployment.token, key=self.key, data_dir=config.data_dir,
        )  # fmt: skip
        self._started.push_async_callback(paid.stop)
        await paid.start()
        return paid

    def _give_streams(self, gateway: Gateway, ledger: Ledger, streams: StreamStore) -> None:
        """The API's provenance streams: where they are kept, what anchors their heads,
        and the ledger their codes name for readers."""
        gateway.streams = streams
        gateway.public_rpc = self.config.public_rpc_url or served_url(ledger)
        gateway.stream_anchorer = self._stream_anchorer

    async def _transfer_sales(self, ledger: Ledger, bus: DeviceBus) -> TransferSales:
        """Started after the bus, stopped before it: a purchase by transfer commands a
        device."""
        transfers = TransferSales(
            ledger,
            TransferSaleStore(self.config.data_dir / "transfer-sales.sqlite3"),
            bus.supply_for,
            poll_s=self.config.transfer_poll_s,
        )
        self._started.push_async_callback(transfers.stop)
        await transfers.start()
        return transfers

    async def _registry_index(self, ledger: Ledger, deployment: Deployment) -> RegistryIndex | None:
        """The registry's index, rebuilt from the chain and following it (see
        `m2mpay.market.registry_index`); None for a deployment without the registry."""
        if deployment.market is None:
            return None
        registry = ServiceRegistry(ledger, deployment.market.registry)
        index = RegistryIndex(registry, from_block=deployment.block_number)
        await index.start()
        self._started.push_async_callback(index.stop)
        return index

    def _anchoring(
        self, ledger: Ledger, deployment: Deployment
    ) -> tuple[TelemetryAnchor | None, PrivateKey | None]:
        """The anchor contract and the key that signs its transactions, as both anchor
        batchers take them (devices' telemetry, streams' heads): neither when the
        deployment has no anchor, for a batcher refuses one without the other."""
        if deployment.anchor is None:
            return None, None
        return TelemetryAnchor(ledger, deployment.anchor), self.key

    def _device_bus(self, ledger: Ledger, deployment: Deployment) -> DeviceBus:
        store = SqliteDeviceStore(self.config.data_dir / "devices.sqlite3")
        anchor, signer = self._anchoring(ledger, deployment)
        telemetry = TelemetryBatcher(
            store,
            anchor=anchor,
            signer=signer,
            config=TelemetryConfig(batch_interval_s=self.config.telemetry_interval_s),
        )
        return DeviceBus(self.key.address, store, telemetry=telemetry)

    async def _stream_store(
        self, ledger: Ledger, deployment: Deployment, node_store: Store
    ) -> StreamStore:
        """The streams, open, their heads anchored when the deployment has the anchor:
        in the node store's PostgreSQL database (and schema) when it has one, so that a
        node kept there keeps all it must not lose there; else in `streams.db`."""
        streams: StreamStore
        if isinstance(node_store, PostgresStore) and self.config.store is not None:
            streams = PostgresStreamStore(self.config.store)
        else:
            streams = SqliteStreamStore(self.config.data_dir / "streams.db")
        await streams.open()
        self._started.push_async_callback(streams.close)
        anchor, signer = self._anchoring(ledger, deployment)
        anchorer = StreamAnchorer(
            streams,
            anchor=anchor,
            signer=signer,
            config=AnchorConfig(batch_interval_s=self.config.telemetry_interval_s),
        )
        await anchorer.start()
        self._started.push_async_callback(anchorer.stop)  # before the store closes
        self._stream_anchorer = anchorer  # the API's exports carry its proofs
        return streams

    def _stream_keeper(
        self, streams: StreamStore, sessions: SessionManager, gateway: Gateway
    ) -> StreamKeeper:
        bought = BoughtStreams(self.config.data_dir / "streams-bought.json", save_json).load()

        def url_of(stream_id: bytes) -> str:  # the API's file, with its anchor proofs
            return f"{self.url}/v1/streams/0x{stream_id.hex()}.jsonl"

        return StreamKeeper(
            sessions,
            SessionStreams(streams, self.key),
            bought,
            url_of=url_of,
            resold=lambda offer_id: offer_id in gateway.resales,
            config=self.config.streams,
        )

    async def _gateway(
        self, ledger: Ledger, deployment: Deployment, node: Node, sessions: SessionManager
    ) -> Gateway:
        config = self.config
        credentials = Credentials.load(config.data_dir, public_reads=config.public_reads)
        if credentials is None:
            self.new_token = new_token(config.data_dir)
            credentials = Credentials.for_token(self.new_token, public_reads=config.public_reads)
        gateway = Gateway(
            node=node,
            sessions=sessions,
            ledger=ledger,
            deployment=deployment,
            credentials=credentials,
            dev_chain=is_dev_chain(ledger),
            explorer=Explorer(ledger, deployment),
        )
        gateway.events.attach(node, sessions)
        gateway.registry = await self._registry_index(ledger, deployment)
        return gateway

    async def stop(self) -> None:
        """Stop writing the sessions' streams, stop serving, then the resales, the
        sessions, the grant keeper and the broker, the bus, the stream anchorer and store,
        the node and the ledger, in that order."""
        try:
            await self._started.aclose()
        finally:
            self._server = self._sessions = self._bus = self._node = self._ledger = None
            self.streams = self.stream_keeper = self._stream_anchorer = None


def _running(part: T | None) -> T:
    """A part of the daemon that exists only between start() and stop()."""
    if part is None:
        raise RuntimeError("the daemon is not running")
    return part
