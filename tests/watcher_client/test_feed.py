"""`WatcherFeed` against a real watcher over HTTP, fed by real nodes on the embedded chain.

The feed registers each channel as it opens and hands over the newest proof the peer
signed; it coalesces, waits out a watcher that is down, registers again when its
token is replaced or its node restarts, and takes `stale` for done. End to end: a
payee that goes offline is defended against a stale close with what its feed handed
over, and finds its money on chain.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from m2mpay.chain import OnchainChannel
from m2mpay.channel.state import ChannelState, Phase
from m2mpay.crypto import Address
from m2mpay.errors import ContractError
from m2mpay.node import Node, PaymentWait
from m2mpay.node.watch import (
    ProofUpdate,
    SignedRegistration,
    TowerIdentity,
    WatchErrorKind,
    WatchRefused,
    Watchtower,
)
from m2mpay.store import open_store
from m2mpay.watcher import Watcher, WatcherServer
from m2mpay.watcher_client import (
    FeedConfig,
    HttpWatchtower,
    WatcherClient,
    WatcherFeed,
    as_watchtower,
)
from tests.conftest import UNIT, World
from tests.watcher.conftest import FAST, MakeNode, StartWatcher, wait_for

QUICK = FeedConfig(retry_base_s=0.02, retry_max_s=0.2)


async def _synced(feed: WatcherFeed, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        await feed.wait_synced()


def _now(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """A plain check as the coroutine `wait_for` polls."""

    async def run() -> bool:
        return check()

    return run


async def _open(
    payer: Node, payee: Node, world: World, feed: WatcherFeed, deposit: int = 10 * UNIT
) -> bytes:
    """Open a channel; returns once the payee's feed has heard of it.

    The payee logs the open before it tells its listeners (log, then act): its
    channel shows open a moment before the feed knows.
    """
    info = await payer.open_channel(
        payee.address, world.token.address, deposit, challenge_period=60, endpoint=payee.endpoint
    )
    channel = info.channel_id
    await wait_for(_now(lambda: feed.channel(channel) is not None), what="the open")
    return channel


def _fixed_clock(value: float) -> Callable[[], float]:
    return lambda: value


def _state(node: Node, channel_id: bytes) -> ChannelState:
    return next(s for s in node.channel_states() if s.channel_id == channel_id)


async def _party_view(client: WatcherClient, channel_id: bytes, party: Address) -> dict[str, Any]:
    view = await client.channel(channel_id)
    entry: dict[str, Any] = next(p for p in view["parties"] if p["party"] == party.checksum)
    return entry


async def test_feed_registers_an_opened_channel_and_hands_over_the_newest_proof(
    world: World, start_watcher: StartWatcher, make_node: MakeNode
) -> None:
    running = await start_watcher(world)
    payer = await make_node(world, world.alice)
    payee = await make_node(world, world.bob)
    async with WatcherFeed(payee, running.client, config=QUICK) as feed:
        channel = await _open(payer, payee, world, feed)
        await _synced(feed)  # registered on opening, before any payment
        registered = await _party_view(running.client, channel, payee.address)
        assert (registered["role"], registered["held_transferred"]) == ("b", None)
        for _ in range(200):
            await payer.pay(channel, UNIT // 100, wait=PaymentWait.QUEUED)
        await payer.pay(channel, UNIT // 100)  # acknowledged: every payment is durable
        await _synced(feed)
    received = payee.channel(channel).received_total
    assert received == 201 * UNIT // 100
    held = await _party_view(running.client, channel, payee.address)
    assert held["held_transferred"] == str(received)
    assert feed.channel(channel) is not None


class _Gate(Watchtower):
    """A real watchtower whose updates can be held at the door; records what passed."""

    def __init__(self, inner: Watchtower) -> None:
        self.inner = inner
        self.open = asyncio.Event()
        self.open.set()
        self.entered = asyncio.Event()
        self.updates: list[int] = []

    async def identity(self) -> TowerIdentity:
        return await self.inner.identity()

    async def register(self, registration: SignedRegistration) -> str:
        return await self.inner.register(registration)

    async def update(self, proof: ProofUpdate) -> None:
        self.updates.append(proof.transferred)
        self.entered.set()
        await self.open.wait()
        await self.inner.update(proof)


async def test_feed_coalesces_payments_that_arrive_during_a_push_into_one_newer_push(
    world: World, start_watcher: StartWatcher, make_node: MakeNode
) -> None:
    running = await start_watcher(world)
    payer = await make_node(world, world.alice)
    payee = await make_node(world, world.bob)
    gate = _Gate(as_watchtower(running.client))
    async with WatcherFeed(payee, gate, config=QUICK) as feed:
        channel = await _open(payer, payee, world, feed)
        await _synced(feed)
        gate.open.clear()
        await payer.pay(channel, 7)
        await gate.entered.wait()  # the push of total 7 is under way, held at the gate
        for _ in range(499):
            await payer.pay(channel, 1, wait=PaymentWait.QUEUED)
        await payer.pay(channel, 1)
        gate.open.set()
        await _synced(feed)
    assert gate.updates == [7, 507]
    held = await _party_view(running.client, channel, payee.address)
    assert held["held_transferred"] == "507"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_feed_waits_out_a_watcher_that_is_down_and_catches_up_when_it_is_back(
    world: World, make_node: MakeNode, tmp_path: Path
) -> None:
    watcher = Watcher(
        world.ledger,
        world.hub.address,
        open_store(tmp_path / "watcher.sqlite3"),
        world.ledger.dev_accounts()[-1],
        config=FAST,
    )
    await watcher.start()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = WatcherServer(watcher, port=port)  # not serving yet: the watcher is down
    payer = await make_node(world, world.alice)
    payee = await make_node(world, world.bob)
    client = WatcherClient(url, timeout=2)
    try:
        async with WatcherFeed(payee, client, config=QUICK) as feed:
            channel = await _open(payer, payee, world, feed)
            for _ in range(20):
                await payer.pay(channel, 3)
            await wait_for(_now(lambda: feed.unreachable >= 3), what="retries")
            assert feed.pending == 1  # nothing was dropped meanwhile
            await server.start()
            await _synced(feed)
            async with WatcherClient(url) as reader:
                held = await _party_view(reader, channel, payee.address)
        assert held["held_transferred"] == "60"
    finally:
        await client.close()
        await server.stop()
        await watcher.stop()


async def test_restarted_node_registers_again_and_a_stale_answer_counts_as_done(
    world: World, start_watcher: StartWatcher, make_node: MakeNode
) -> None:
    """Tokens live in memory: after a restart the feed registers every open channel
    again. Restarting within the registration's second, it dates the next one later.
    The watcher holds the newest proof already, so its `stale` answer ends the push."""
    running = await start_watcher(world)
    payer = await make_node(world, world.alice)
    payee = await make_node(world, world.bob, name="payee")
    frozen = float(int(time.time()))
    clock = _fixed_clock(frozen)
    async with WatcherFeed(payee, running.client, config=QUICK, clock=clock) as feed:
        channel = await _open(payer, payee, world, feed)
        for _ in range(5):
            await payer.pay(channel, 11)
        await _synced(feed)
    first = await _party_view(running.client, channel, payee.address)
    await payee.stop()

    payee = await make_node(world, world.bob, name="payee")
    tower = _Gate(as_watchtower(running.client))
    async with WatcherFeed(payee, tower, config=QUICK, clock=clock) as feed:
        await _synced(feed)
        state = feed.channel(channel)
    again = await _party_view(running.client, channel, payee.address)
    assert first["registered_at"] == int(frozen)
    assert again["registered_at"] == int(frozen) + 1  # the same second was refused as replayed
    assert tower.updates == [55]  # pushed once, answered stale: nothing more to do
    assert again["held_transferred"] == "55"
    assert state is not None
    assert (state.registered, state.held, state.newest, state.problem) == (True, 55, 55, None)


async def test_feed_registers_again_when_its_token_is_replaced(
    world: World, start_watcher: StartWatcher, make_node: MakeNode
) -> None:
    running = await start_watcher(world)
    payer = await make_node(world, world.alice)
    payee = await make_node(world, world.bob)
    async with WatcherFeed(payee, running.client, config=QUICK) as feed:
        channel = await _open(payer, payee, world, feed)
        await payer.pay(channel, 5)
        await _synced(feed)
        # The same party registers again elsewhere (a second device with its key, say),
        # a little ahead of the clock: the feed's token no longer opens the registration.
        terms = _state(payee, channel).terms
        onchain = OnchainChannel(terms.a, terms.b, terms.asset, terms.challenge_period, terms.nonce)
        issued = int(time.time()) + 5
        await running.client.register(onchain, world.bob, issued_at=issued)
        await payer.pay(channel, 5)
        await _synced(feed)
    held = await _party_view(running.client, channel, payee.address)
    assert held["held_transferred"] == "10"
    assert held["registered_at"] > issued


class _Refusing(Watchtower):
    """A watcher double that refuses every proof as invalid."""

    def __init__(self, inner: Watchtower) -> None:
        self.inner = inner
        self.refused: list[int] = []

    async def identity(self) -> TowerIdentity:
        return await self.inner.identity()

    async def register(self, registration: SignedRegistration) -> str:
        return await self.inner.register(registration)

    async def update(self, proof: ProofUpdate) -> None:
        self.refused.append(proof.transferred)
        raise WatchRefused(WatchErrorKind.INVALID, "wrong_signer", "not the peer", "signature")


async def test_a_proof_refused_as_invalid_is_dropped_and_reported(
    world: World, start_watcher: StartWatcher, make_node: MakeNode
) -> None:
    running = await start_watcher(world)
    payer = await make_node(world, world.alice)
    payee = await make_node(world, world.bob)
    tower = _Refusing(HttpWatchtower(running.client))
    async with WatcherFeed(payee, tower, config=QUICK) as feed:
        channel = await _open(payer, payee, world, feed)
        await payer.pay(channel, 9)
        await _synced(feed)  # dropped: retrying a proof the watcher calls invalid is futile
        state = feed.channel(channel)
    assert tower.refused == [9]
    assert state is not None
    assert state.problem == "wrong_signer: not the peer (field signature)"


class _Elsewhere(Watchtower):
    async def identity(self) -> TowerIdentity:
        return TowerIdentity(Address("0x" + "22" * 20), 1, Address("0x" + "33" * 20))

    async def register(self, registration: SignedRegistration) -> str:
        raise AssertionError("must not register with a watcher of another hub")

    async def update(self, proof: ProofUpdate) -> None:
        raise AssertionError("must not push to a watcher of another hub")


async def test_a_feed_refuses_to_start_with_a_watcher_of_another_hub(
    world: World, make_node: MakeNode
) -> None:
    payee = await make_node(world, world.bob)
    with pytest.raises(ContractError, match="defends hub"):
        await WatcherFeed(payee, _Elsewhere()).start()


async def test_offline_payee_is_defended_with_what_its_feed_handed_over(
    world: World, start_watcher: StartWatcher, make_node: MakeNode
) -> None:
    """The payee's feed keeps the watcher up to date; the payee goes offline; the payer
    closes on chain with an old total; the watcher challenges and settles; the payee
    comes back to its money, on chain and in its node."""
    running = await start_watcher(world)
    payer = await make_node(world, world.alice, name="payer")
    payee = await make_node(world, world.bob, name="payee")
    payee_before = await world.token.balance_of(world.bob.address)
    async with WatcherFeed(payee, running.client, config=QUICK) as feed:
        channel = await _open(payer, payee, world, feed, deposit=10 * UNIT)
        for _ in range(10):
            await payer.pay(channel, UNIT // 10)
        await _synced(feed)
    paid = UNIT
    terms = _state(payer, channel).terms
    await payee.stop()
    await payer.stop()

    old = 2 * UNIT // 10  # the payer claims it paid two tenths
    onchain = OnchainChannel(
        terms.a, terms.b, terms.asset, terms.challenge_period, terms.nonce, deposit_a=10 * UNIT
    )
    await world.hub.close(world.alice, onchain, old, 0, None)

    async def challenged() -> bool:
        closing = (await running.client.channel(channel))["onchain"]["closing"]
        return closing is not None and closing["transferred_a"] == str(paid)

    await wait_for(challenged, what="the watcher's challenge")
    await world.ledger.advance_time(61)

    async def settled() -> bool:
        return bool((await running.client.channel(channel))["onchain"]["phase"] == "settled")

    await wait_for(settled, what="the watcher's settlement")
    assert await world.token.balance_of(world.bob.address) == payee_before + paid

    payee = await make_node(world, world.bob, name="payee")  # back online, same store

    async def paid_out() -> bool:
        return payee.channel(channel).phase is Phase.SETTLED

    await wait_for(paid_out, what="the payee's node to see the settlement")
    assert payee.channel(channel).final_balance_mine == paid
    assert [d["kind"] for d in await running.client.disputes()] == ["challenge", "settle"]
