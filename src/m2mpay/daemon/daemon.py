"""The node daemon: a ledger, the contracts, a node with its sessions, and the HTTP API.

`Daemon(config, key).start()` connects the ledger (the embedded chain of the data
dir, hosted here or by the process that already hosts it, or `rpc_url`), finds or
(on a dev chain) deploys the contracts, opens the stores, starts the node and its
session manager, and serves the API. `stop()` undoes it in reverse order; a new
`start()` on the same data dir resumes every channel and session.

Every node sells paid MQTT access too (`m2mpay.daemon.access`): on its own Mosquitto
by default, on a broker given by URL, or not at all (`MqttConfig(enabled=False)`).

Data dir layout: `keystore/` (the key, encrypted), `api-token.sha256`,
`node.sqlite3` (channels), `sessions.sqlite3`, `devices.sqlite3` (the device bus:
registrations, commands, telemetry), `offers.json`, `feeds.json` (the feeds sold,
with their offers, and those bought, without passwords), `grants.sqlite3` (the
grants on the broker), `mqtt/` (the node's own Mosquitto: config, dynsec file,
admin credentials, log), `ports.json` (the API and peer ports the system chose,
kept for the next start), and, unless `chain_dir` or `rpc_url` says otherwise, the
embedded chain with `deployments.json`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from fastapi import APIRouter

from m2mpay.api.app import create_app
from m2mpay.api.auth import Credentials, new_token
from m2mpay.api.fast import create_asgi
from m2mpay.api.gateway import Gateway
from m2mpay.api.routes_devices import device_routes
from m2mpay.asgi import AsgiServer
from m2mpay.bus.server import DeviceBus
from m2mpay.bus.sqlite import SqliteDeviceStore
from m2mpay.chain import Deployment, Ledger, TelemetryAnchor
from m2mpay.chain.provision import ensure_deployment, is_dev_chain
from m2mpay.chain.shared import connect_ledger
from m2mpay.crypto import PrivateKey
from m2mpay.daemon.access import MqttConfig, PaidAccess
from m2mpay.daemon.ports import KeptPorts
from m2mpay.lifecycle import Startable
from m2mpay.market.offer_book import OfferBook
from m2mpay.node import LedgerAccess, Node, NodeConfig
from m2mpay.provenance.telemetry import TelemetryBatcher, TelemetryConfig
from m2mpay.store import open_store
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
    telemetry_interval_s: float = 60.0  # anchor device telemetry at least this often
    mqtt: MqttConfig = field(default_factory=MqttConfig)  # paid MQTT access

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
            self._node = node = Node(
                self.key,
                LedgerAccess(ledger, deployment.hub, self.key),
                open_store(config.store or config.data_dir / "node.sqlite3"),
                transport=WebSocketTransport(
                    host=config.peer_host,
                    port=ports.port("peer", config.peer_host, config.peer_port),
                ),
                config=NodeConfig(codec=config.codec),
            )
            started.push_async_callback(node.stop)
            await node.start()
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
            self.gateway = gateway = self._gateway(ledger, deployment, node, sessions)
            started.push_async_callback(gateway.close)  # the resales, before their sessions
            gateway.supplies = bus.supply_factory
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
            self._server = AsgiServer(
                create_asgi(gateway, create_app(gateway, extra=routes)),
                host=config.host,
                port=ports.port("api", config.host, config.port),
                name="node API",
            )
            started.push_async_callback(self._server.stop)
            ports.keep("api", await self._server.start())
            ports.keep("peer", node.endpoint)
        except BaseException:
            await self.stop()
            raise
        log.info("node %s serving %s on %s", self.key.address, self.url, ledger.caip2)

    def _device_bus(self, ledger: Ledger, deployment: Deployment) -> DeviceBus:
        store = SqliteDeviceStore(self.config.data_dir / "devices.sqlite3")
        anchor = TelemetryAnchor(ledger, deployment.anchor) if deployment.anchor else None
        telemetry = TelemetryBatcher(
            store,
            anchor=anchor,
            signer=self.key if anchor is not None else None,
            config=TelemetryConfig(batch_interval_s=self.config.telemetry_interval_s),
        )
        return DeviceBus(self.key.address, store, telemetry=telemetry)

    def _gateway(
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
        )
        gateway.events.attach(node, sessions)
        return gateway

    async def stop(self) -> None:
        """Stop serving, then the resales, the sessions, the grant keeper and the broker,
        the bus, the node and the ledger, in that order."""
        try:
            await self._started.aclose()
        finally:
            self._server = self._sessions = self._bus = self._node = self._ledger = None


def _running(part: T | None) -> T:
    """A part of the daemon that exists only between start() and stop()."""
    if part is None:
        raise RuntimeError("the daemon is not running")
    return part
