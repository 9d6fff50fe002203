"""`m2mpay watcher …`: run a watchtower, or ask one how it is doing.

`python -m m2mpay.cli.watcher serve …` runs the same command without the `m2mpay`
entry point (the benchmark starts watcher processes that way).
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer
from rich.table import Table

from m2mpay.chain.deploy import load_deployment
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.shared import ledger_session
from m2mpay.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonOption,
    ReadyJsonOption,
    RpcUrlOption,
    console,
    log_to_stderr,
    require_free_port,
    run,
    serve_until,
    stop_on_signals,
)
from m2mpay.cli.ledger_access import signing_key
from m2mpay.cli.remote import reply
from m2mpay.crypto import Address, PrivateKey
from m2mpay.store import open_store
from m2mpay.watcher import Watcher, WatcherConfig, WatcherServer
from m2mpay.watcher_client import WatcherClient

__all__ = ["watcher_app"]

watcher_app = typer.Typer(
    help="A watchtower that defends the channels of parties who are offline.",
    no_args_is_help=True,
)


def watcher_key(ledger: Ledger, key_env: str) -> PrivateKey:
    """The key in $`key_env`, or on a dev chain the last dev account.

    The last one, because tests and demos use the first dev accounts as parties and a
    watcher must not share a key (or a nonce sequence) with a party.
    """
    return signing_key(ledger, key_env, dev_account=-1, what="the watcher's key (it pays gas)")


@watcher_app.command("serve")
def serve(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    rpc_url: RpcUrlOption = None,
    hub: Annotated[
        str | None,
        typer.Option(help="ChannelHub address (default: the data dir's deployments.json)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8700,
    store: Annotated[
        str | None,
        typer.Option(help="Store path or postgresql:// URL (default: DATA_DIR/watcher.sqlite3)."),
    ] = None,
    key_env: Annotated[
        str,
        typer.Option(
            "--key-env",
            help="Environment variable with the watcher's hex key, which pays gas "
            "(dev chains fall back to the last dev account).",
        ),
    ] = "M2MPAY_WATCHER_KEY",
    start_block: Annotated[
        int, typer.Option(min=0, help="First block a new watcher reads (and back-fills from).")
    ] = 0,
    poll_interval: Annotated[
        float,
        typer.Option(
            min=0.001, help="Seconds between reads of the chain head (a remote node: 1-2)."
        ),
    ] = 0.05,
    as_json: ReadyJsonOption = False,
) -> None:
    """Serve the watcher's HTTP API and defend registered channels until SIGINT/SIGTERM."""
    log_to_stderr(logging.INFO)
    require_free_port(host, port, "--port")

    async def go() -> None:
        stop = stop_on_signals()
        async with ledger_session(data_dir=data_dir, rpc_url=rpc_url) as ledger:
            hub_address = Address(hub) if hub else load_deployment(data_dir, ledger.chain_id).hub
            location = store or str(data_dir / "watcher.sqlite3")
            watcher = Watcher(
                ledger,
                hub_address,
                open_store(location, namespace="watcher"),
                watcher_key(ledger, key_env),
                config=WatcherConfig(start_block=start_block, poll_interval_s=poll_interval),
            )
            server = WatcherServer(watcher, host=host, port=port)
            try:
                await watcher.start()
                url = await server.start()
                ready = {
                    "url": url,
                    "address": watcher.address.checksum,
                    "chain": ledger.caip2,
                    "hub": hub_address.checksum,
                    "store": watcher.store_location,
                    "ledger": ledger.description,
                    "pid": os.getpid(),
                }
                people = (
                    f"watcher listening at [bold]{url}[/] as [bold]{ready['address']}[/]\n"
                    f"  chain {ready['chain']} ({ready['ledger']}), hub {ready['hub']}\n"
                    f"  store {ready['store']}; API schema at {url}/openapi.json;"
                    " Ctrl-C stops it"
                )
                await serve_until(stop, ready, [people], as_json=as_json, what="watcher")
            finally:
                await server.stop()
                await watcher.stop()

    run(go())


@watcher_app.command("status")
def status(
    url: Annotated[str, typer.Option(help="The watcher's base URL.")] = "http://127.0.0.1:8700",
    as_json: JsonOption = False,
) -> None:
    """Show a running watcher's identity, load and the disputes it took part in."""

    async def go() -> None:
        async with WatcherClient(url, timeout=10) as client:
            info = await client.info()
            disputes = await client.disputes()
        summary = {
            "url": url,
            "address": info.address.checksum,
            "chain": info.chain,
            "hub": info.hub.checksum,
            "channels": info.channels,
            "registrations": info.registrations,
            "proofs": info.proofs,
            "cursor": info.cursor,
            "challenges": sum(
                d["kind"] == "challenge" and d["status"] == "mined" for d in disputes
            ),
            "settlements": sum(d["kind"] == "settle" and d["status"] == "mined" for d in disputes),
            "failed_actions": sum(d["status"] == "failed" for d in disputes),
        }
        reply(summary, _show_status, as_json=as_json)

    run(go())


def _show_status(summary: dict[str, object]) -> None:
    table = Table(title="m2mpay watcher", show_header=False)
    for key, value in summary.items():
        table.add_row(key, str(value))
    console.print(table)


if __name__ == "__main__":
    watcher_app(prog_name="m2mpay watcher")
