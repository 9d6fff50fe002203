"""The `m2mpay` command."""

from __future__ import annotations

from typing import Annotated

import typer

from m2mpay import __version__
from m2mpay.cli.bench import bench_app
from m2mpay.cli.channel import channel_app
from m2mpay.cli.contracts import contracts_app
from m2mpay.cli.demo import demo_command
from m2mpay.cli.device import device_app
from m2mpay.cli.ledger import ledger_app
from m2mpay.cli.node import node_command
from m2mpay.cli.offer import offer_app
from m2mpay.cli.session import session_app
from m2mpay.cli.wallet import wallet_app
from m2mpay.cli.watcher import watcher_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="m2mpay",
    help="Machines selling metered services to each other over EVM payment channels.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(ledger_app, name="ledger")
app.add_typer(bench_app, name="bench")
app.add_typer(contracts_app, name="contracts")
app.add_typer(watcher_app, name="watcher")
app.command("node")(node_command)
app.command("demo")(demo_command)
# Clients of a running node's API (`--url`, `--token`):
app.add_typer(wallet_app, name="wallet")
app.add_typer(channel_app, name="channel")
app.add_typer(offer_app, name="offer")
app.add_typer(session_app, name="session")
app.add_typer(device_app, name="device")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"m2mpay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """m2mpay: payment channels for machines."""


def main() -> None:
    app()
