"""`m2mpay node`: run the node daemon (ledger, contracts, node, sessions, HTTP API).

The key lives in `DATA_DIR/keystore/` as an Ethereum keystore v3 file, made on first
run. Its passphrase comes from `--passphrase-file`, `$M2MPAY_PASSPHRASE` or a prompt,
never from the command line. The API's bearer token is made on first run and shown
once (`--new-token` makes a new one).

Paid MQTT data runs on the node's own Mosquitto (in `DATA_DIR/mqtt/`) unless
`--mqtt-url` names a broker to use (its administrator in `--mqtt-admin-file`, a JSON
object `{"username", "password"}`) or `--no-mqtt` switches it off.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from m2mpay.access.pricing import Per
from m2mpay.api.auth import new_token
from m2mpay.api.routes_status import WatcherToCheck, status_routes
from m2mpay.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    PassphraseFileOption,
    ReadyJsonOption,
    RpcUrlOption,
    log_to_stderr,
    require_free_port,
    run,
    serve_until,
    stop_on_signals,
)
from m2mpay.cli.key import passphrase
from m2mpay.crypto import Address, PrivateKey
from m2mpay.crypto.keystore import (
    KEYSTORE_DIR,
    find_keystore,
    load_keystore,
    save_keystore,
)
from m2mpay.daemon.access import MqttConfig
from m2mpay.daemon.daemon import Daemon, DaemonConfig
from m2mpay.daemon.paywall import PAID_PREFIX, PaywallConfig
from m2mpay.errors import M2MPayError
from m2mpay.watcher_client import WatcherClient, WatcherFeed

__all__ = ["node_command", "unlock_key"]


def unlock_key(data_dir: Path, passphrase_file: Path | None) -> tuple[PrivateKey, bool]:
    """The node's key from its keystore, made on first run; and whether it is new."""
    directory = data_dir / KEYSTORE_DIR
    path = find_keystore(directory)
    if path is None:
        key = PrivateKey.generate()
        save_keystore(directory, key, passphrase(passphrase_file, confirm=True))
        return key, True
    return load_keystore(path, passphrase(passphrase_file, confirm=False)), False


def _mqtt_config(enabled: bool, url: str | None, admin_file: Path | None, port: int) -> MqttConfig:
    """The broker `m2mpay node` sells on, from its options; a mistake is one line."""
    if not enabled:
        return MqttConfig(enabled=False)
    if url is None:
        if admin_file is not None:
            raise M2MPayError("--mqtt-admin-file goes with --mqtt-url")
        return MqttConfig(port=port)
    if admin_file is None:
        raise M2MPayError("--mqtt-url needs its administrator: --mqtt-admin-file")
    try:
        admin = json.loads(admin_file.read_text())
        username, password = str(admin["username"]), str(admin["password"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise M2MPayError(
            f'cannot read {admin_file}: {exc} (a JSON object {{"username", "password"}})'
        ) from None
    return MqttConfig(url=url, admin_username=username, admin_password=password)


def _address_of(watcher: WatcherClient) -> Callable[[], Awaitable[Address]]:
    """Asks the watcher for its address each time: whether it answers now."""

    async def ask() -> Address:
        return (await watcher.info()).address

    return ask


def node_command(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    rpc_url: RpcUrlOption = None,
    chain_dir: Annotated[
        Path | None,
        typer.Option(
            help="The embedded chain's data dir (with --rpc-url: where the contracts are "
            "recorded), shared with other nodes (default: DATA_DIR)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address the HTTP API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP API port (0: any).")] = 8402,
    peer_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port other nodes reach this node on (0: any).")
    ] = 0,
    public_reads: Annotated[
        bool, typer.Option(help="Let reads through without the token (writes always need it).")
    ] = False,
    public_rpc_url: Annotated[
        str | None,
        typer.Option(
            help="JSON-RPC URL the streams' QR codes name, for readers to check anchors on "
            "(default: the embedded chain this node serves; never --rpc-url, which may hold a key)."
        ),
    ] = None,
    passphrase_file: PassphraseFileOption = None,
    reset_token: Annotated[
        bool, typer.Option("--new-token", help="Make a new API token (the old one stops working).")
    ] = False,
    telemetry_interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds at most before device telemetry is anchored.")
    ] = 60.0,
    watcher: Annotated[
        str | None,
        typer.Option(help="A watcher's URL: hand it our newest proofs so it defends us offline."),
    ] = None,
    mqtt: Annotated[
        bool,
        typer.Option(
            help="Sell paid MQTT data (on the node's own Mosquitto unless --mqtt-url); "
            "--no-mqtt on a machine without mosquitto."
        ),
    ] = True,
    mqtt_url: Annotated[
        str | None,
        typer.Option(
            envvar="M2MPAY_MQTT_URL",
            help="An existing broker to sell on, mqtt://host:port, with Mosquitto's dynamic "
            "security; only the node's own clients and roles are touched.",
        ),
    ] = None,
    mqtt_admin_file: Annotated[
        Path | None,
        typer.Option(
            envvar="M2MPAY_MQTT_ADMIN_FILE",
            help='With --mqtt-url: its administrator, a JSON file {"username", "password"}.',
        ),
    ] = None,
    mqtt_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The own broker's port (0: as last time, or any).")
    ] = 0,
    paywall_price: Annotated[
        int,
        typer.Option(
            min=0,
            help="Sell /x402/ paths over HTTP 402 at this price a request (smallest units "
            "of the deployment's token), paid in channels or exact; 0: no paywall.",
        ),
    ] = 0,
    paywall_upstream: Annotated[
        str | None,
        typer.Option(help="With --paywall-price: sell this HTTP service at /x402/upstream/."),
    ] = None,
    paywall_upstream_price: Annotated[
        int | None, typer.Option(min=1, help="The upstream's price (default: --paywall-price).")
    ] = None,
    paywall_per: Annotated[
        Per, typer.Option(help="What the upstream's price is for (second: paid as it flows).")
    ] = Per.REQUEST,
    as_json: ReadyJsonOption = False,
) -> None:
    """Run this machine's node: channels, metered sessions, paid MQTT data and the HTTP
    API, until Ctrl-C."""
    log_to_stderr(logging.WARNING if as_json else logging.INFO)
    config = DaemonConfig(
        data_dir=data_dir,
        chain_dir=chain_dir,
        rpc_url=rpc_url,
        host=host,
        port=port,
        peer_port=peer_port,
        public_reads=public_reads,
        public_rpc_url=public_rpc_url,
        telemetry_interval_s=telemetry_interval,
        mqtt=_mqtt_config(mqtt, mqtt_url, mqtt_admin_file, mqtt_port),
        paywall=_paywall_config(
            paywall_price, paywall_upstream, paywall_upstream_price, paywall_per
        ),
    )
    require_free_port(config.host, config.port, "--port")
    require_free_port(config.peer_host, config.peer_port, "--peer-port")
    key, new_key = unlock_key(data_dir, passphrase_file)
    token = new_token(data_dir) if reset_token else None

    async def go() -> None:
        stop = stop_on_signals()
        client = WatcherClient(watcher) if watcher else None
        checked = (
            WatcherToCheck(watcher, _address_of(client), client.disputes)
            if watcher and client
            else None
        )
        daemon = Daemon(config, key, extra=[status_routes(checked)])
        feed: WatcherFeed | None = None
        try:
            await daemon.start()
            feed = WatcherFeed(daemon.node, client) if client is not None else None
            if feed is not None:
                await feed.start()
            gateway = daemon.gateway
            assert gateway is not None
            if client is not None:  # what the node's listings name as their watcher
                gateway.watcher_address = _address_of(client)
            shown = token or daemon.new_token
            ready = {
                "url": daemon.url,
                "address": key.address.checksum,
                "chain": gateway.ledger.caip2,
                "ledger": gateway.ledger.description,
                "hub": gateway.deployment.hub.checksum,
                "token_contract": gateway.deployment.token.checksum,
                "peer_endpoint": daemon.node.endpoint,
                "new_key": new_key,
                "api_token": shown,
                "watcher": watcher,
                "mqtt": gateway.feeds.broker_at if gateway.feeds is not None else None,
                "paywall": f"{daemon.url}{PAID_PREFIX}" if paywall_price else None,
                "pid": os.getpid(),
            }
            people = [
                f"node [bold]{ready['address']}[/] on {ready['chain']} ({ready['ledger']})\n"
                f"  API {ready['url']} (docs at {ready['url']}/docs), "
                f"peers reach it at {ready['peer_endpoint']}\n"
                f"  ChannelHub {ready['hub']}, token {ready['token_contract']}\n"
                + (f"  MQTT broker {ready['mqtt']}" if ready["mqtt"] else "  MQTT off")
                + (f"\n  HTTP 402 paywall at {ready['paywall']}" if ready["paywall"] else "")
                + ("\n  contracts deployed now on this dev chain" if daemon.deployed_now else ""),
                *([f"  API token (shown once, keep it): [bold yellow]{shown}[/]"] if shown else []),
                "  Ctrl-C stops it",
            ]
            await serve_until(stop, ready, people, as_json=as_json, what="node")
        finally:
            if feed is not None:
                await feed.stop()
            if client is not None:
                await client.close()
            await daemon.stop()

    run(go())


def _paywall_config(
    price: int, upstream: str | None, upstream_price: int | None, per: Per
) -> PaywallConfig:
    if upstream is not None and not upstream.startswith(("http://", "https://")):
        raise typer.BadParameter(f"--paywall-upstream {upstream!r} is not an http(s) URL")
    if (upstream or upstream_price) and not price:
        raise typer.BadParameter("--paywall-upstream needs --paywall-price")
    return PaywallConfig(price, upstream, upstream_price, per)
