"""The `m2mpay` command."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from m2mpay import __version__
from m2mpay.cli.channel import channel_app
from m2mpay.cli.common import report_error, show_tracebacks
from m2mpay.cli.data import data_app
from m2mpay.cli.device import device_app
from m2mpay.cli.escrow import escrow_app
from m2mpay.cli.lazy import LazyGroup
from m2mpay.cli.offer import offer_app
from m2mpay.cli.registry import registry_app
from m2mpay.cli.remote import remote_command
from m2mpay.cli.session import session_app
from m2mpay.cli.status import status
from m2mpay.cli.stream import stream_app
from m2mpay.cli.wallet import wallet_app

__all__ = ["app", "main"]


class _Root(LazyGroup):
    """The `m2mpay` group: every error a command ends with becomes one or two lines
    naming the problem and the fix (`report_error`), unless `--debug` asks for the
    traceback."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # usage errors and exits: typer says them already
        except Exception as exc:
            report_error(exc)


app = typer.Typer(
    name="m2mpay",
    help="Machines selling metered services to each other over EVM payment channels.",
    no_args_is_help=True,
    add_completion=False,
    # The traceback of `--debug` without the frames' variables: they hold passphrases.
    pretty_exceptions_show_locals=False,
    cls=_Root,  # node, demo, ledger, bench, contracts, watcher, torture, key: imported when run
)
# Clients of a running node's API (`--url`, `--token`):
app.add_typer(wallet_app, name="wallet")
app.add_typer(channel_app, name="channel")
app.add_typer(offer_app, name="offer")
app.add_typer(session_app, name="session")
app.add_typer(device_app, name="device")
app.add_typer(data_app, name="data")
app.add_typer(stream_app, name="stream")
app.add_typer(escrow_app, name="escrow")
app.add_typer(registry_app, name="registry")
remote_command(app, "status")(status)


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
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show its traceback (to report a bug).")
    ] = False,
) -> None:
    """m2mpay: payment channels for machines."""
    show_tracebacks(debug)


def main() -> None:
    app()
