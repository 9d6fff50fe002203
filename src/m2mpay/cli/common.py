"""Options and helpers shared by the `m2mpay` commands."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import typer
from rich.console import Console

from m2mpay.chain.anvil import AnvilNode
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.provision import DEV_CHAIN_IDS
from m2mpay.chain.shared import ledger_session
from m2mpay.crypto import PrivateKey
from m2mpay.errors import CryptoError, M2MPayError

__all__ = [
    "DEV_CHAIN_IDS",
    "AnvilOption",
    "DataDirOption",
    "JsonOption",
    "KeyEnvOption",
    "RpcUrlOption",
    "console",
    "err_console",
    "open_ledger",
    "run",
    "signing_key",
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


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; m2mpay errors become a message and exit code 1."""
    try:
        return asyncio.run(coro)
    except M2MPayError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None


@asynccontextmanager
async def open_ledger(
    data_dir: Path | None, rpc_url: str | None, anvil: bool = False
) -> AsyncIterator[Ledger]:
    """The ledger the options name: a private Anvil, an RPC node, or the data dir's chain."""
    if anvil and rpc_url:
        raise typer.BadParameter("--anvil and --rpc-url exclude each other")
    node: AnvilNode | None = None
    if anvil:
        node = AnvilNode()
        node.start()
        rpc_url = node.url
    try:
        async with ledger_session(data_dir=data_dir, rpc_url=rpc_url) as ledger:
            yield ledger
    finally:
        if node is not None:
            node.stop()


def signing_key(ledger: Ledger, key_env: str) -> PrivateKey:
    """The key named by `key_env`, or dev account 0 on a dev chain."""
    secret = os.environ.get(key_env)
    if secret:
        try:
            return PrivateKey.from_hex(secret.strip())
        except CryptoError as exc:
            raise typer.BadParameter(f"${key_env}: {exc}") from None
    if ledger.chain_id in DEV_CHAIN_IDS and ledger.dev_accounts():
        return ledger.dev_accounts()[0]
    raise typer.BadParameter(
        f"{ledger.caip2} is not a dev chain: put the signing key in ${key_env}"
    )
