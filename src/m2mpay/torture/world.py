"""What every phase of a torture run shares: one embedded chain with the contracts
deployed, hosted by this process (the processes under test reach it over JSON-RPC),
and the helpers that read the truth from it and from the processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from m2mpay.bench.processes import PeerProcess
from m2mpay.chain import ChannelHub, Ledger, OnchainChannel, TokenContract, deploy_contracts
from m2mpay.chain.deploy import MarketContracts
from m2mpay.chain.devkeys import dev_keys
from m2mpay.chain.events import ChannelChallenged, ChannelOpened, ChannelSettled
from m2mpay.chain.shared import connect_ledger
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import M2MPayError
from m2mpay.ports import free_port

__all__ = ["UNIT", "PartyKeys", "TortureError", "World", "until"]

UNIT: Final = 10**18
# How long a restarted process may take to catch up with its peer and the chain; far
# beyond what any trial needs, so that reaching it means something is stuck.
PATIENCE_S: Final = 90.0

T = TypeVar("T")


class TortureError(M2MPayError):
    """A trial could not be carried out (not an invariant violation by itself)."""


async def until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout: float = PATIENCE_S,
) -> T:
    """Ask `probe` until its answer satisfies `done`; the last answer otherwise raises."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await probe()
        if done(answer):
            return answer
        if loop.time() > deadline:
            raise TortureError(f"{what}: still not so after {timeout:g} s (last: {answer})")
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class PartyKeys:
    """Dev-account indices of the roles (accounts 1–5 hold tokens)."""

    payer: int = 1
    payee: int = 2
    reseller: int = 3
    # A pair of its own for the watcher's phase: nodes of the shared pair would
    # otherwise see (and act on) its channels, which carry their addresses.
    guarded_payer: int = 4
    guarded_payee: int = 5
    device: int = 6  # holds no tokens: its host funds its channels
    host: int = 7
    device_peer: int = 8
    # The grant phase's pair: the buyer is minted tokens, the seller (beyond the funded
    # dev accounts) is sent coin for gas.
    feed_buyer: int = 9
    feed_seller: int = 10
    # The provenance phase's seller: sent coin for the gas of anchoring its streams.
    stream_seller: int = 11
    # The broker phase's pair (beyond the funded dev accounts, both sent coin for gas,
    # the buyer minted tokens): the grant phase's nodes would see its channels.
    plug_buyer: int = 12
    plug_seller: int = 13
    # The market phase's actor holds the keys from 14 on (`bench.market_actor`).


class Shared(Protocol):
    """Something several phases use in turn (the node processes of a pair)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Shared)


class World:
    """The chain and deployment of one torture run, and a place for the phases' files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.chain_dir = directory / "chain"
        self.keys = PartyKeys()
        self._ledger: Ledger | None = None
        self._hub: ChannelHub | None = None
        self._token: TokenContract | None = None
        self.anchor: Address | None = None
        self.market: MarketContracts | None = None
        self.shared: dict[str, Shared] = {}
        self.generation = 0  # bumped by `reset`: what is started next uses fresh stores

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "the world is not started"
        return self._ledger

    @property
    def hub(self) -> ChannelHub:
        assert self._hub is not None, "the world is not started"
        return self._hub

    @property
    def token(self) -> TokenContract:
        assert self._token is not None, "the world is not started"
        return self._token

    def key(self, index: int) -> PrivateKey:
        return self.ledger.dev_accounts()[index]

    async def start(self) -> None:
        self._ledger = await connect_ledger(data_dir=self.chain_dir)
        accounts = self._ledger.dev_accounts()
        keys = self.keys
        beyond = dev_keys(keys.plug_seller + 1)  # up to the accounts beyond the funded ones
        minted = [accounts[i] for i in (1, 2, 3, 4, 5, 7, 9)] + [beyond[keys.plug_buyer]]
        deployment, self._hub, self._token = await deploy_contracts(
            self._ledger, accounts[0], mint={key.address: 10**6 * UNIT for key in minted}
        )
        self.anchor = deployment.anchor  # where stream heads are anchored
        self.market = deployment.market  # the exchange, registry and escrow
        for index in (keys.feed_seller, keys.stream_seller, keys.plug_buyer, keys.plug_seller):
            await self._ledger.transact(
                accounts[0], beyond[index].address, b"", gas=21_000, value=10 * UNIT
            )

    async def reset(self) -> None:
        """Stop what the phases share, after a trial that could not be carried out:
        whatever it left behind (a half-open channel, a stuck process) goes with it."""
        for shared in self.shared.values():
            await shared.stop()
        self.shared.clear()
        self.generation += 1

    async def share(self, name: str, kind: type[S], make: Callable[[], S]) -> S:
        """What the phases share under `name`, made and started by the first to ask: a
        phase then costs no start-up. `reset` stops it with the rest."""
        held = self.shared.get(name)
        if isinstance(held, kind):
            return held
        made = make()
        self.shared[name] = made
        await made.start()
        return made

    async def stop(self) -> None:
        await self.reset()
        if self._ledger is not None:
            await self._ledger.stop()
            self._ledger = None

    def files(self, phase: str) -> Path:
        """Where `phase` keeps its processes' stores; fresh after each `reset`."""
        directory = self.directory / f"{phase}-{self.generation}"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def peer(self, phase: str, role: str, key: int, **options: Any) -> PeerProcess:
        """A node process of `role` in `phase`, on a port of its own that it keeps across
        restarts (its peers find it again where they knew it)."""
        return PeerProcess(
            key=key,
            hub=self.hub.address,
            store=self.files(phase) / f"{role}.sqlite3",
            chain_dir=self.chain_dir,
            port=free_port(),
            window=256,
            reconnect_max_delay=0.5,
            **options,
        )

    async def onchain_channel(self, channel: bytes, since: int) -> OnchainChannel:
        """The channel's parameters and opening deposit, from its `ChannelOpened` event."""
        for event in await self.hub.events(since):
            if isinstance(event, ChannelOpened) and event.channel_id == channel:
                return OnchainChannel(
                    event.a,
                    event.b,
                    event.token,
                    event.challenge_period,
                    event.nonce,
                    deposit_a=event.deposit_a,
                )
        raise TortureError(f"no ChannelOpened for 0x{channel.hex()} since block {since}")

    async def settled(self, channel: bytes, since: int) -> ChannelSettled | None:
        for event in await self.hub.events(since):
            if isinstance(event, ChannelSettled) and event.channel_id == channel:
                return event
        return None

    async def challenged(self, channel: bytes, since: int) -> list[ChannelChallenged]:
        return [
            event
            for event in await self.hub.events(since)
            if isinstance(event, ChannelChallenged) and event.channel_id == channel
        ]
