"""Options and helpers shared by the `m2mpay` commands.

Kept free of the chain (py-evm, web3): the API clients' commands import only this,
so `m2mpay channel pay` starts in a fraction of a second. Opening a ledger is in
`m2mpay.cli.ledger_access`."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from m2mpay.cli.explain import CliProblem, Explained, NodeTarget, explain
from m2mpay.errors import ApiRefusal, M2MPayError
from m2mpay.ports import bind_error

__all__ = [
    "AnvilOption",
    "BatchOption",
    "DataDirOption",
    "DevicePriceOption",
    "JsonOption",
    "KeyEnvOption",
    "NodeTarget",
    "PassphraseFileOption",
    "ReadyJsonOption",
    "RpcUrlOption",
    "WindowOption",
    "console",
    "err_console",
    "log_to_stderr",
    "report_error",
    "require_free_port",
    "run",
    "serve_until",
    "show_tracebacks",
    "stop_on_signals",
]

T = TypeVar("T")

DEFAULT_DATA_DIR: Final = Path.home() / ".m2mpay"

console = Console()
err_console = Console(stderr=True)

DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="M2MPAY_DATA_DIR",
        help="Where the embedded chain, deployments and keys are kept.",
    ),
]
RpcUrlOption = Annotated[
    str | None,
    typer.Option(
        "--rpc-url",
        envvar="M2MPAY_RPC_URL",
        help="Use this JSON-RPC node instead of the embedded ledger.",
    ),
]
AnvilOption = Annotated[
    bool, typer.Option("--anvil", help="Start a private Anvil node and use it.")
]
KeyEnvOption = Annotated[
    str,
    typer.Option(
        "--key-env",
        help="Environment variable holding the hex private key that signs transactions "
        "(dev chains fall back to the first dev account).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
# A daemon's --json: its one ready line (see serve_until), for the program that started it.
ReadyJsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON line when ready, for programs.")
]
# The terms of metered sessions, where a command takes them (offer publish, bench sessions).
WindowOption = Annotated[int, typer.Option(min=1, help="Credit window, in units.")]
BatchOption = Annotated[int, typer.Option(min=1, help="Units per report and payment.")]
# A device's price, where a command runs one or sells its service (device run, offer publish).
DevicePriceOption = Annotated[
    int | None,
    typer.Option(min=1, help="Per unit, in the smallest unit (default: the device's)."),
]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        help="File whose first line is the keystore passphrase (else $M2MPAY_PASSPHRASE, "
        "else a prompt)."
    ),
]


@dataclass(slots=True)
class _Settings:
    tracebacks: bool = False  # the root's `--debug`, set on every run


_settings = _Settings()


def show_tracebacks(on: bool) -> None:
    """Whether errors end in their traceback (`m2mpay --debug`) or in one or two lines."""
    _settings.tracebacks = on


def report_error(
    exc: BaseException, node: NodeTarget | None = None, *, as_json: bool = False
) -> NoReturn:
    """Print what went wrong and how to fix it, and exit with 1; with `--debug`, raise
    `exc` again for its traceback. With `--json` the error goes to stderr in the API's
    error shape (a node's refusal as the node gave it)."""
    if _settings.tracebacks:
        raise exc
    said = explain(exc, node)
    if as_json:
        detail: dict[str, Any]
        if isinstance(exc, ApiRefusal):
            detail = {"status": exc.status, "code": exc.code, "message": exc.message}
            if exc.field is not None:
                detail["field"] = exc.field
        else:
            detail = {"code": said.code, "message": said.problem}
        typer.echo(json.dumps({"error": detail}), err=True)
    else:
        _print_error(said)
    raise typer.Exit(1)


def _print_error(said: Explained) -> None:
    # soft_wrap: a long line stays one line, for people to copy and for grep.
    err_console.print(f"[bold red]error:[/] {escape(said.problem)}", soft_wrap=True)
    if said.fix:
        err_console.print(f"  [bold]fix:[/] {escape(said.fix)}", soft_wrap=True)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; m2mpay errors become a message and exit code 1."""
    try:
        return asyncio.run(coro)
    except M2MPayError as exc:
        report_error(exc)


def require_free_port(host: str, port: int, option: str) -> None:
    """Refuse a port another program listens on before anything starts, with the fix:
    the server would find out only once the chain and the rest are up, and
    uvicorn's exit on a failed bind escapes the event loop as a traceback."""
    if port == 0:
        return
    exc = bind_error(host, port)
    if exc is None:
        return
    if exc.errno != errno.EADDRINUSE:
        raise CliProblem(f"cannot listen on {host}:{port} ({option}): {exc}")
    raise CliProblem(
        f"port {port} on {host} ({option}) is already in use, by another "
        "m2mpay service or another program",
        f"stop that program, or choose another port with {option}, or {option} 0 for any free one",
    )


def log_to_stderr(level: int) -> None:
    """A daemon's log: on stderr, as stdout carries its ready line for programs."""
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT (Ctrl-C) or SIGTERM sets: a daemon runs until then."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_until(
    stop: asyncio.Event,
    ready: dict[str, Any],
    people: Sequence[str],
    *,
    as_json: bool,
    what: str,
) -> None:
    """Say that the daemon (`what`) is ready, as one JSON line for programs or as the
    lines of `people`, and serve until `stop` is set."""
    if as_json:
        print(json.dumps(ready), flush=True)
    else:
        for line in people:
            # Unwrapped: a token or URL broken over two lines cannot be copied whole.
            console.print(line, soft_wrap=True)
    await stop.wait()
    if not as_json:
        err_console.print(f"stopping the {what} …")
