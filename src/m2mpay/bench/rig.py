"""What the benchmarks run on: a temporary directory, a chain with the contracts
deployed and tokens for the paying dev account, and node processes on that chain;
and who they tell their progress to."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m2mpay.bench.processes import PeerProcess
from m2mpay.chain import ChannelHub, Ledger, TokenContract
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.shared import connect_ledger
from m2mpay.crypto import PrivateKey

__all__ = ["PAYER", "Progress", "Rig", "narrator", "set_up_rig"]

PAYER = 1  # the dev account that pays, and is minted tokens; account 0 deploys

Progress = Callable[[str], None]  # told what a benchmark is doing, a step at a time


def narrator(progress: Progress | None) -> Progress:
    """`progress`, or a listener that hears nothing when the caller gave none."""
    return progress or (lambda _step: None)


@dataclass(frozen=True)
class Rig:
    root: Path
    ledger: Ledger
    keys: list[PrivateKey]
    hub: ChannelHub
    token: TokenContract
    rpc_url: str | None

    @property
    def chain_dir(self) -> Path:
        """The embedded chain's data dir, which other processes reach it through."""
        return self.root / "chain"

    def peer(self, key: int, name: str, **options: Any) -> PeerProcess:
        """A node process of dev account `key` on this chain, its store named `name`."""
        reach: dict[str, Any] = (
            {"rpc_url": self.rpc_url} if self.rpc_url else {"chain_dir": self.chain_dir}
        )
        store = self.root / f"{name}.sqlite3"
        return PeerProcess(key=key, hub=self.hub.address, store=store, **reach, **options)


@contextlib.asynccontextmanager
async def set_up_rig(
    *, payer_tokens: int, rpc_url: str | None = None, progress: Progress | None = None
) -> AsyncIterator[Rig]:
    """An embedded chain hosted by this process (or the node at `rpc_url`) with the
    contracts deployed and `payer_tokens` minted to `PAYER`, in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="m2mpay-bench-") as tmp:
        root = Path(tmp)
        if rpc_url is None:
            narrator(progress)("hosting an embedded chain and deploying the contracts")
            ledger = await connect_ledger(data_dir=root / "chain")
        else:
            ledger = await connect_ledger(rpc_url=rpc_url)
        try:
            keys = ledger.dev_accounts()
            _, hub, token = await deploy_contracts(
                ledger, keys[0], mint={keys[PAYER].address: payer_tokens}
            )
            yield Rig(root, ledger, keys, hub, token, rpc_url)
        finally:
            await ledger.stop()
