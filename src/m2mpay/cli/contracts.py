"""`m2mpay contracts …`: build the artifacts from the Vyper sources, or check them."""

from __future__ import annotations

import typer

from m2mpay.chain.artifacts import build_artifacts, check_artifacts, contracts_dir
from m2mpay.cli.common import console, err_console
from m2mpay.errors import M2MPayError

__all__ = ["contracts_app"]

contracts_app = typer.Typer(help="Compile and check the Vyper contracts.", no_args_is_help=True)


@contracts_app.command("build")
def build() -> None:
    """Compile contracts/*.vy into contracts/build/*.json with the pinned Vyper."""
    try:
        for path in build_artifacts():
            console.print(f"wrote {path}")
    except M2MPayError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None


@contracts_app.command("check")
def check() -> None:
    """Fail when the committed artifacts differ from a fresh compile of the sources."""
    try:
        check_artifacts()
    except M2MPayError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"artifacts in {contracts_dir() / 'build'} match their sources")
