"""Where a scenario plays: one chain, separate node daemons, devices, and the books.

The runner hosts the embedded chain itself (or reaches `--rpc-url`) and deploys
the contracts once, so that a node going offline in a scenario never takes the
chain with it. Every actor is an `m2mpay node` process with its own key, store
and API, reached only through the public API (`m2mpay.client`) and the device
bus. The stage touches the chain it hosts only as the world around the actors: to
count what each scenario cost, read token balances and let chain time pass; a
scenario that cheats on chain does it through `m2mpay.scenarios.adversary`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m2mpay.bench.daemons import NodeProcess
from m2mpay.chain.deploy import Deployment
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.provision import ensure_deployment
from m2mpay.chain.shared import ledger_session
from m2mpay.chain.token import TokenContract
from m2mpay.chain.web3_ledger import Web3Ledger
from m2mpay.client import NodeClient
from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices.simulated import Simulation
from m2mpay.errors import M2MPayError

__all__ = ["Actor", "ChainBooks", "ScenarioFailed", "Stage", "until"]

PASSPHRASE = "m2mpay demo"  # the demo's keystores; a real node reads its own


class ScenarioFailed(M2MPayError):
    """A scenario's outcome was wrong, or it never came."""


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    """Poll another process until `condition` holds; fail naming `what` otherwise."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():  # noqa: ASYNC110 (the state lives in another process)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise ScenarioFailed(f"waited {timeout:.0f} s for {what}") from None


@dataclass
class Actor:
    """A machine in a scenario: its node daemon and an authorised client of its API."""

    name: str
    process: NodeProcess
    token: str
    api: NodeClient

    @property
    def address(self) -> Address:
        return Address(self.process.ready["address"])

    @property
    def endpoint(self) -> str:
        return str(self.process.ready["peer_endpoint"])

    @property
    def bus_url(self) -> str:
        return self.process.url.replace("http://", "ws://", 1) + "/v1/devices/ws"

    async def stop(self) -> None:
        await self.api.aclose()
        code = await asyncio.to_thread(self.process.stop)
        if code != 0:
            raise ScenarioFailed(f"{self.name}'s node exited with {code} on SIGTERM")

    async def restart(self) -> None:
        """Start the node again; its token was shown once, at the first start."""
        await asyncio.to_thread(self.process.start)
        self.api = NodeClient(self.process.url, self.token)


@dataclass
class ChainBooks:
    """What a scenario did on chain: its transactions and their gas, from the blocks."""

    txs: int = 0
    gas: int = 0


@dataclass
class Stage:
    """See the module docstring; `Stage.open` makes one."""

    ledger: Ledger
    deployment: Deployment
    work_dir: Path
    chain_dir: Path
    rpc_url: str | None
    simulation: Simulation
    actors: list[Actor] = field(default_factory=list)
    services: list[NodeProcess] = field(default_factory=list)
    scene: str = "scene"  # the running scenario: its actors' data dirs are under it
    _first_block: int = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, work_dir: Path, *, rpc_url: str | None = None, speed: float = 240.0
    ) -> AsyncIterator[Stage]:
        chain_dir = work_dir / "chain"
        chain_dir.mkdir(parents=True, exist_ok=True)
        async with ledger_session(
            data_dir=None if rpc_url else chain_dir, rpc_url=rpc_url
        ) as ledger:
            deployment, _ = await ensure_deployment(ledger, chain_dir)
            simulation = Simulation(speed=speed)
            stage = cls(ledger, deployment, work_dir, chain_dir, rpc_url, simulation)
            try:
                yield stage
            finally:
                await stage.dismiss()
                await simulation.close()

    @property
    def token(self) -> Address:
        return self.deployment.token

    async def actor(self, name: str, *extra: str) -> Actor:
        """Start a node daemon of its own (key, store, API) for `name`, with gas and
        tokens from the dev faucet."""
        chain = ["--chain-dir", str(self.chain_dir)]
        if self.rpc_url:
            chain += ["--rpc-url", self.rpc_url]
        process = NodeProcess(
            self.work_dir / self.scene / name,
            *chain,
            "--telemetry-interval",
            "1",
            *extra,
            passphrase=PASSPHRASE,
        )
        await asyncio.to_thread(process.start)
        token = process.ready["api_token"]
        actor = Actor(name, process, token, NodeClient(process.url, token))
        self.actors.append(actor)
        await actor.api.faucet()
        return actor

    async def watcher(self) -> NodeProcess:
        """A watchtower process of its own on the stage's chain (`ready["url"]`)."""
        extra = ["--store", str(self.work_dir / self.scene / "watcher.sqlite3")]
        if self.rpc_url:
            extra += ["--rpc-url", self.rpc_url]
        process = NodeProcess(
            self.chain_dir, *extra, command=("watcher", "serve"), log_name=f"{self.scene}-watcher"
        )
        await asyncio.to_thread(process.start)
        self.services.append(process)
        return process

    async def dismiss(self) -> None:
        for actor in reversed(self.actors):
            if actor.process.process is not None:
                with contextlib.suppress(M2MPayError):
                    await actor.stop()
        self.actors.clear()
        for process in self.services:
            await asyncio.to_thread(process.stop)
        self.services.clear()

    # ------------------------------------------------------------------ the books

    async def mark(self) -> None:
        """Count the chain's transactions from the next block on."""
        self._first_block = await self.ledger.block_number() + 1

    async def books(self) -> ChainBooks:
        """Transactions and gas in the blocks since `mark`."""
        w3 = self.ledger.w3 if isinstance(self.ledger, Web3Ledger) else None
        books = ChainBooks()
        if w3 is None:
            return books
        last = await self.ledger.block_number()
        for number in range(self._first_block, last + 1):
            block: Any = await w3.eth.get_block(number)
            for tx_hash in block["transactions"]:
                receipt: Any = await w3.eth.get_transaction_receipt(tx_hash)
                books.txs += 1
                books.gas += int(receipt["gasUsed"])
        return books

    async def pass_chain_time(self, seconds: int) -> None:
        """Move the chain's clock on, as if `seconds` went by (a challenge period)."""
        await self.ledger.advance_time(seconds)

    async def token_balance(self, address: Address, token: Address | None = None) -> int:
        return await TokenContract(self.ledger, token or self.token).balance_of(address)

    async def mine(self, blocks: int) -> None:
        """Mine `blocks` blocks (a second of chain time each): confirmations."""
        for _ in range(blocks):
            await self.ledger.advance_time(1)

    # ------------------------------------------------------------------ wallets

    async def wallet(self, native: int = 10**18) -> PrivateKey:
        """A wallet of its own: a new key with `native` coin for gas from the dev chain's
        last account, and nothing else (one that knows nothing of channels)."""
        key = PrivateKey.generate()
        purse = self.ledger.dev_accounts()[-1]
        await self.ledger.transact(purse, key.address, b"", gas=21_000, value=native)
        return key
