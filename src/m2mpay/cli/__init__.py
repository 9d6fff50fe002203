"""The `m2mpay` command."""

from __future__ import annotations

from typing import Annotated

import typer

from m2mpay import __version__
from m2mpay.cli.channel import channel_app
from m2mpay.cli.device import device_app
from m2mpay.cli.lazy import LazyGroup
from m2mpay.cli.offer import offer_app
from m2mpay.cli.session import session_app
from m2mpay.cli.wallet import wallet_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="m2mpay",
    help="Machines selling metered services to each other over EVM payment channels.",
    no_args_is_help=True,
    add_completion=False,
    cls=LazyGroup,  # node, demo, ledger, bench, contracts, watcher, torture: imported when run
)
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
