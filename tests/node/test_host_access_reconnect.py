"""A device's link to its host comes back after the host goes away: the chain events
of the outage reach the device exactly once, and nothing it asked is done twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from m2mpay.channel.inputs import ChainDeposited
from m2mpay.channel.messages import ChannelTerms
from m2mpay.channel.outputs import OpenTx
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import ChannelError, LedgerUnavailable, TransportError
from m2mpay.node import LedgerAccess, Node, NodeConfig
from m2mpay.node.chain_access import ChainInput
from m2mpay.node.host import DeviceHost, HostAccess, HostEvents, HostExecute, HostResult, HostStatus
from m2mpay.node.host_feed import HostFeed
from m2mpay.node.host_protocol import send_on
from m2mpay.store import open_store
from m2mpay.wire import JsonCodec, PeerLink, WebSocketTransport, open_peer_link
from tests.node.conftest import Chain, NodeFactory
from tests.waiting import eventually

QUICK = (0.05, 0.5)  # reconnect backoff for these tests: first pause, longest pause

StartHost = Callable[..., Awaitable[DeviceHost]]


@pytest.fixture
async def start_host(chain: Chain) -> AsyncIterator[StartHost]:
    """Starts hosts paying from dev account 3, on a given port; all stopped at the end."""
    await chain.token.mint(chain.keys[0], chain.keys[3].address, 10**21)
    hosts: list[DeviceHost] = []

    async def start(port: int = 0) -> DeviceHost:
        host = DeviceHost(
            chain.keys[3],
            chain.ledger,
            chain.hub.address,
            WebSocketTransport(port=port),
            codec="json",
        )
        await host.start()
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        await host.stop()


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


async def test_device_gets_the_outages_events_and_transacts_again_once_its_host_is_back(
    chain: Chain, make_node: NodeFactory, start_host: StartHost, tmp_path: Path
) -> None:
    first = await start_host()
    charger = await make_node(2)
    device_key = PrivateKey.generate()  # no ether, no tokens: the host pays
    link = HostAccess(
        device_key, WebSocketTransport(), first.endpoint, host=first.key.address,
        reconnect_backoff=QUICK,
    )  # fmt: skip
    device = Node(
        device_key,
        link,
        open_store(tmp_path / "device.sqlite3"),
        transport=WebSocketTransport(),
        config=NodeConfig(tick_interval_s=0.05, codec="cbor"),
    )
    await device.start()
    try:
        info = await device.open_channel(
            charger.address, chain.token.address, 100, endpoint=charger.endpoint
        )
        channel = info.channel_id
        await first.stop()
        await eventually(lambda: not link.connected)

        # While the device is cut off, its peer funds the channel on chain, twice.
        await charger.top_up(channel, 30)
        await charger.top_up(channel, 20)
        with pytest.raises(ChannelError, match="reconnecting"):
            await device.top_up(channel, 10)  # fails at once: nothing to carry it
        assert device.channel(channel).deposit_peer == 0

        await start_host(_port(first.endpoint))  # same key, same ledger, same endpoint
        await eventually(lambda: device.channel(channel).deposit_peer == 50)
        topped = await device.top_up(channel, 25)  # through the new host, seen through it
        assert topped.deposit_mine == 125
    finally:
        await device.stop()
    deposits = await LedgerAccess(chain.ledger, chain.hub.address, device_key).catch_up(0)
    mine = [
        i
        for i in deposits[0]
        if isinstance(i, ChainDeposited) and i.participant == device_key.address
    ]
    assert [i.deposit_a for i in mine] == [125]  # the failed top-up never reached the chain


async def test_followed_inputs_are_the_chains_exactly_across_host_restarts(
    chain: Chain, make_node: NodeFactory, start_host: StartHost
) -> None:
    host = await start_host()
    port = _port(host.endpoint)
    alice, bob = await make_node(1), await make_node(2)
    first = await alice.open_channel(
        bob.address, chain.token.address, 100, peer_deposit=10, endpoint=bob.endpoint
    )
    # A bare link with alice's key sees what alice's device would; alice's node has a ledger.
    link = HostAccess(chain.keys[1], WebSocketTransport(), host.endpoint, reconnect_backoff=QUICK)
    truth = LedgerAccess(chain.ledger, chain.hub.address, chain.keys[1])
    await link.start()
    try:
        seen, head = await link.catch_up(0)
        assert seen == (await truth.catch_up(0))[0]

        async def collect() -> None:
            async for inp in link.follow(head + 1):
                seen.append(inp)

        collector = asyncio.ensure_future(collect())

        async def all_in() -> list[ChainInput]:
            expected, _ = await truth.catch_up(0)
            await eventually(lambda: len(seen) >= len(expected))
            return expected

        async def restart() -> None:
            await host.stop()
            await eventually(lambda: not link.connected)

        await alice.top_up(first.channel_id, 5)  # live; the resumed session repeats its block
        assert seen == await all_in()
        await restart()
        await bob.top_up(first.channel_id, 7)
        second = await alice.open_channel(
            bob.address, chain.token.address, 40, peer_deposit=4, endpoint=bob.endpoint
        )  # a channel the new host learns of only from the history
        host = await start_host(port)
        assert seen == await all_in()

        await alice.top_up(second.channel_id, 3)
        assert seen == await all_in()
        await restart()
        host = await start_host(port)  # back at once, nothing new in between
        await bob.top_up(second.channel_id, 4)
        assert seen == await all_in()
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
    finally:
        await link.stop()


class _ScriptedHost:
    """A host on a real WebSocket that greets devices, records what they send, and
    answers a request only when the test tells it to: a request can stay in flight."""

    def __init__(self, key: PrivateKey, port: int = 0) -> None:
        self.key = key
        self.transport = WebSocketTransport(port=port)
        self.received: list[object] = []
        self.session: PeerLink | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.transport.start()
        self._task = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        link = await self.transport.accept()
        self.session = await open_peer_link(link, self.key, JsonCodec())
        hub = Address("0x" + "11" * 20)
        await send_on(self.session, HostStatus(1, hub, 0, int(time.time())))
        with contextlib.suppress(TransportError):
            while True:
                self.received.append(await self.session.recv())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.session is not None:
            await self.session.close()
        await self.transport.stop()


def _open_tx(device: Address, nonce: int) -> OpenTx:
    peer, hub = PrivateKey.generate().address, Address("0x" + "11" * 20)
    return OpenTx(ChannelTerms(1, hub, device, peer, hub, 60, nonce, 10, 0))


async def test_a_request_in_flight_when_the_host_dies_fails_and_is_not_sent_again() -> None:
    host_key, device_key = PrivateKey.generate(), PrivateKey.generate()
    first = _ScriptedHost(host_key)
    await first.start()
    link = HostAccess(
        device_key, WebSocketTransport(), first.transport.endpoint, host=host_key.address,
        reconnect_backoff=QUICK,
    )  # fmt: skip
    second = _ScriptedHost(host_key, _port(first.transport.endpoint))
    try:
        await link.start()
        lost = _open_tx(device_key.address, 1)
        in_flight = asyncio.ensure_future(link.execute(lost))
        await eventually(lambda: bool(first.received))
        assert [type(m) for m in first.received] == [HostExecute]
        await first.stop()  # the host dies before it answers
        with pytest.raises(LedgerUnavailable, match="lost the host"):
            await asyncio.wait_for(in_flight, 30)

        await second.start()
        await eventually(lambda: link.connected)
        fresh = _open_tx(device_key.address, 2)
        asked = asyncio.ensure_future(link.execute(fresh))
        await eventually(lambda: bool(second.received))
        request = second.received[0]
        assert isinstance(request, HostExecute)
        assert request.tx == fresh  # the first thing the new session carries is the new request
        assert second.session is not None
        await send_on(second.session, HostResult(request.request_id, True, ""))
        await asyncio.wait_for(asked, 30)
        assert second.received == [request]  # and the lost one never came again
    finally:
        await link.stop()
        await first.stop()
        await second.stop()


async def test_a_host_that_never_answers_fails_the_request_as_the_ledger_unavailable() -> None:
    # The node turns a LedgerError into a failed transaction; a bare TimeoutError
    # would instead end the task that submitted it, leaving the transaction pending.
    host_key = PrivateKey.generate()
    silent = _ScriptedHost(host_key)
    await silent.start()
    link = HostAccess(
        PrivateKey.generate(), WebSocketTransport(), silent.transport.endpoint,
        host=host_key.address, request_timeout=0.5,
    )  # fmt: skip
    try:
        await link.start()
        with pytest.raises(LedgerUnavailable, match="did not answer"):
            await link.execute(_open_tx(host_key.address, 1))
        assert [type(m) for m in silent.received] == [HostExecute]
    finally:
        await link.stop()
        await silent.stop()


async def test_stop_during_the_backoff_returns_at_once_and_leaves_no_task(
    start_host: StartHost,
) -> None:
    host = await start_host()
    pause = 600.0  # a pause no test waits out: stop() must not sit through it
    link = HostAccess(
        PrivateKey.generate(), WebSocketTransport(), host.endpoint, reconnect_backoff=(pause, pause)
    )
    await link.start()
    await host.stop()
    await eventually(lambda: not link.connected)
    with pytest.raises(LedgerUnavailable, match="reconnecting"):
        await link.execute(_open_tx(PrivateKey.generate().address, 1))
    stopping = asyncio.ensure_future(link.stop())
    done, _ = await asyncio.wait({stopping}, timeout=30)  # a bound far from the pause
    if not done:
        stopping.cancel()
    assert stopping in done
    await stopping
    leftover = [
        task
        for task in asyncio.all_tasks()
        if "HostAccess" in getattr(task.get_coro(), "__qualname__", "") and not task.done()
    ]
    assert leftover == []
    with pytest.raises(LedgerUnavailable, match="not running"):
        await link.execute(_open_tx(PrivateKey.generate().address, 2))


def _deposit(block: int, total: int) -> ChainDeposited:
    return ChainDeposited(b"\x01" * 32, Address("0x" + "22" * 20), total, 0, block)


async def test_feed_resumes_inside_a_block_cut_short_without_gap_or_repeat() -> None:
    feed = HostFeed()
    history = feed.ask_history(0)
    assert feed.hello_from() == 0
    feed.received(HostEvents((_deposit(3, 1),), 5), reply=True)
    assert (await history).head == 5

    a, b, c, d = _deposit(7, 2), _deposit(7, 3), _deposit(7, 4), _deposit(9, 5)
    feed.received(HostEvents((a,), 7), reply=False)
    feed.received(HostEvents((b,), 7), reply=False)  # the session is lost before c arrives
    assert feed.hello_from() == 7  # block 7 again: it may have more than was delivered
    feed.received(HostEvents((a, b, c, d), 9), reply=True)
    feed.received(HostEvents((d,), 9), reply=False)  # live, already in the history
    delivered = [await asyncio.wait_for(feed.next(), 1) for _ in range(4)]
    assert delivered == [a, b, c, d]
    assert feed.hello_from() == 10
    e = _deposit(10, 6)
    feed.received(HostEvents((e,), 12), reply=True)
    assert await asyncio.wait_for(feed.next(), 1) == e
