"""Finding the contracts on a chain, or deploying them on a development chain.

A daemon starting on a fresh embedded chain (or a local Anvil) deploys ChannelHub
and the token itself and records them in the data dir; on any other chain the
contracts must have been deployed (`m2mpay ledger deploy`) and recorded already.
Several processes starting together on one data dir deploy once: the first holds a
lock while it deploys, the others then find its record.
"""

from __future__ import annotations

import asyncio
import fcntl
from dataclasses import replace
from pathlib import Path
from typing import Final

from m2mpay.chain.deploy import (
    Deployment,
    deploy_contracts,
    deploy_market,
    load_deployment,
    save_deployment,
    verify_deployment,
)
from m2mpay.chain.embedded import DEFAULT_EMBEDDED_CHAIN_ID
from m2mpay.chain.ledger import Ledger
from m2mpay.errors import DeploymentNotFound

__all__ = ["DEV_CHAIN_IDS", "DEV_MINT", "ensure_deployment", "is_dev_chain"]

DEV_CHAIN_IDS: Final = frozenset({DEFAULT_EMBEDDED_CHAIN_ID, 31337})
DEV_MINT: Final = 1_000 * 10**18  # tokens for each dev account but the deployer


def is_dev_chain(ledger: Ledger) -> bool:
    return ledger.chain_id in DEV_CHAIN_IDS and bool(ledger.dev_accounts())


async def ensure_deployment(ledger: Ledger, directory: Path) -> tuple[Deployment, bool]:
    """The recorded, verified deployment in `directory`; on a dev chain, deploy one
    when none is recorded. Returns it and whether it was deployed now."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, at start-up)
    with (directory / "deploy.lock").open("a+b") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        try:
            try:
                deployment = load_deployment(directory, ledger.chain_id)
            except DeploymentNotFound:
                if not is_dev_chain(ledger):
                    raise
            else:
                await verify_deployment(ledger, deployment)
                if deployment.market is not None or not is_dev_chain(ledger):
                    return deployment, False
                # Recorded before the market's contracts existed: a dev chain gets them.
                market, _ = await deploy_market(ledger, ledger.dev_accounts()[0], deployment.hub)
                deployment = replace(deployment, market=market)
                save_deployment(directory, deployment)
                return deployment, False
            owner, *others = ledger.dev_accounts()
            deployment, _, _ = await deploy_contracts(
                ledger, owner, mint={k.address: DEV_MINT for k in others[:4]}
            )
            save_deployment(directory, deployment)
            return deployment, True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
