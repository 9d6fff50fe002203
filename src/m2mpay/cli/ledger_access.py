"""Opening the ledger the command-line options name, and the key that signs on it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import typer

from m2mpay.chain.anvil import AnvilNode
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.provision import DEV_CHAIN_IDS
from m2mpay.chain.shared import ledger_session
from m2mpay.crypto import PrivateKey
from m2mpay.errors import CryptoError

__all__ = ["DEV_CHAIN_IDS", "open_ledger", "signing_key"]


@asynccontextmanager
async def open_ledger(
    data_dir: Path | None,
    rpc_url: str | None,
    anvil: bool = False,
    *,
    block_time: float | None = None,
) -> AsyncIterator[Ledger]:
    """The ledger the options name: a private Anvil (mining at once, or a block every
    `block_time` seconds), an RPC node, or the data dir's chain."""
    if anvil and rpc_url:
        raise typer.BadParameter("--anvil and --rpc-url exclude each other")
    if block_time is not None and not anvil:
        raise typer.BadParameter("--block-time goes with --anvil")
    node: AnvilNode | None = None
    if anvil:
        node = AnvilNode(block_time=block_time)
        node.start()
        rpc_url = node.url
    try:
        async with ledger_session(data_dir=data_dir, rpc_url=rpc_url) as ledger:
            yield ledger
    finally:
        if node is not None:
            node.stop()


def signing_key(
    ledger: Ledger, key_env: str, *, dev_account: int = 0, what: str = "the signing key"
) -> PrivateKey:
    """The key in $`key_env`, or on a dev chain the dev account `dev_account`."""
    secret = os.environ.get(key_env)
    if secret:
        try:
            return PrivateKey.from_hex(secret.strip())
        except CryptoError as exc:
            raise typer.BadParameter(f"${key_env}: {exc}") from None
    if ledger.chain_id in DEV_CHAIN_IDS and ledger.dev_accounts():
        return ledger.dev_accounts()[dev_account]
    raise typer.BadParameter(f"{ledger.caip2} is not a dev chain: put {what} in ${key_env}")
