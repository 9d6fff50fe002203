"""A device defended by its host's watcher: keys and the wire protocol only, no ledger.

The device's registration (signed with the device's key) and its newest proofs
reach the watcher through the host, over the host session the device already has;
the device speaks CBOR, the host JSON. End to end with real processes: a device
process opens a channel its host funds, gets paid, is SIGKILLed; its peer closes
with an old state; the watcher challenges and settles; the restarted device finds
its balance, on chain and in its node.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from m2mpay.bench.processes import PeerProcess
from m2mpay.chain import OnchainChannel, dev_keys
from m2mpay.crypto import Address, PrivateKey, Signature
from m2mpay.errors import ContractError
from m2mpay.node import Node, NodeConfig
from m2mpay.node.host import DeviceHost, HostAccess
from m2mpay.node.watch import (
    ProofUpdate,
    SignedRegistration,
    TowerIdentity,
    WatchErrorKind,
    WatchRefused,
    Watchtower,
    WatchUnavailable,
)
from m2mpay.store import open_store
from m2mpay.watcher_client import (
    FeedConfig,
    HttpWatchtower,
    LocalWatchtower,
    WatcherClient,
    WatcherFeed,
)
from m2mpay.wire import WebSocketTransport
from tests.conftest import UNIT, World
from tests.watcher.conftest import MakeNode, StartWatcher, wait_for

QUICK = FeedConfig(retry_base_s=0.02, retry_max_s=0.2)


async def _party_view(client: WatcherClient, channel_id: bytes, party: Address) -> dict[str, Any]:
    view = await client.channel(channel_id)
    entry: dict[str, Any] = next(p for p in view["parties"] if p["party"] == party.checksum)
    return entry


async def _host(world: World, watchtower: Watchtower | None) -> DeviceHost:
    """A host speaking JSON that funds devices from carol's account."""
    host = DeviceHost(
        world.carol,
        world.ledger,
        world.hub.address,
        WebSocketTransport(),
        codec="json",
        watchtower=watchtower,
    )
    await host.start()
    return host


@pytest.fixture
async def host_links() -> AsyncIterator[list[HostAccess]]:
    """Host accesses a test starts by hand, stopped at its end (a device node stops its own)."""
    links: list[HostAccess] = []
    yield links
    for link in links:
        await link.stop()


async def test_device_feeds_its_hosts_watcher_through_the_host_session(
    world: World, start_watcher: StartWatcher, make_node: MakeNode, tmp_path: Path
) -> None:
    running = await start_watcher(world)
    host = await _host(world, LocalWatchtower(running.watcher))
    payer = await make_node(world, world.alice)
    key = PrivateKey.generate()  # no ether, no tokens, no ledger: keys and the wire only
    link = HostAccess(key, WebSocketTransport(), host.endpoint, host=host.key.address, codec="cbor")
    device = Node(
        key,
        link,
        open_store(tmp_path / "device.sqlite3"),
        transport=WebSocketTransport(),
        config=NodeConfig(tick_interval_s=0.05, codec="cbor"),
    )
    await device.start()
    try:
        async with WatcherFeed(device, link.watchtower, config=QUICK) as feed:
            info = await device.open_channel(
                payer.address, world.token.address, UNIT, peer_deposit=UNIT,
                endpoint=payer.endpoint,
            )  # fmt: skip
            for _ in range(25):
                await payer.pay(info.channel_id, UNIT // 100)
            async with asyncio.timeout(30):
                await feed.wait_synced()
        held = await _party_view(running.client, info.channel_id, key.address)
    finally:
        await device.stop()
        await host.stop()
    assert held["held_transferred"] == str(25 * UNIT // 100)
    assert held["role"] == "a"
    assert await world.ledger.balance(key.address) == 0  # the host paid every transaction


async def test_host_relays_only_for_the_device_itself_and_says_when_it_has_no_watcher(
    world: World, start_watcher: StartWatcher, host_links: list[HostAccess]
) -> None:
    running = await start_watcher(world)
    with_watcher = await _host(world, LocalWatchtower(running.watcher))
    without = await _host(world, None)
    try:
        rogue = PrivateKey.generate()
        link = HostAccess(rogue, WebSocketTransport(), with_watcher.endpoint, codec="cbor")
        host_links.append(link)
        await link.start()
        identity = await link.watchtower.identity()
        assert identity == TowerIdentity(
            running.watcher.address, world.ledger.chain_id, world.hub.address
        )
        someone_else = ProofUpdate(b"\x01" * 32, world.bob.address, "t", 5, _signature())
        with pytest.raises(WatchRefused) as refused:
            await link.watchtower.update(someone_else)
        assert (refused.value.kind, refused.value.code) == (
            WatchErrorKind.INVALID,
            "not_the_device",
        )
        unknown = ProofUpdate(b"\x01" * 32, rogue.address, "t", 5, _signature())
        with pytest.raises(WatchRefused) as refused:
            await link.watchtower.update(unknown)  # the watcher's own refusal, relayed
        assert (refused.value.kind, refused.value.code) == (
            WatchErrorKind.UNKNOWN,
            "unknown_registration",
        )

        bare = HostAccess(rogue, WebSocketTransport(), without.endpoint, codec="cbor")
        host_links.append(bare)
        await bare.start()
        with pytest.raises(WatchUnavailable, match="relays to no watcher"):
            await bare.watchtower.identity()
        registration = SignedRegistration(
            rogue.address, world.bob.address, world.token.address, 60, 1,
            rogue.address, 1, _signature(),
        )  # fmt: skip
        with pytest.raises(WatchUnavailable, match="relays to no watcher"):
            await bare.watchtower.register(registration)
    finally:
        await with_watcher.stop()
        await without.stop()


def _signature() -> Signature:
    """A well-formed signature by nobody in particular."""
    return PrivateKey.generate().sign_digest(b"\x00" * 32)


class _Elsewhere(Watchtower):
    async def identity(self) -> TowerIdentity:
        return TowerIdentity(Address("0x" + "22" * 20), 1, Address("0x" + "33" * 20))

    async def register(self, registration: SignedRegistration) -> str:
        raise AssertionError("never reached")

    async def update(self, proof: ProofUpdate) -> None:
        raise AssertionError("never reached")


async def test_host_refuses_to_start_with_a_watcher_of_another_hub(world: World) -> None:
    with pytest.raises(ContractError, match="not this host's hub"):
        await _host(world, _Elsewhere())


async def test_killed_device_process_is_defended_through_its_host_and_finds_its_balance(
    world: World, start_watcher: StartWatcher, make_node: MakeNode, tmp_path: Path
) -> None:
    running = await start_watcher(world)
    watcher_http = WatcherClient(running.url)
    host = await _host(world, HttpWatchtower(watcher_http))  # the watcher is a service apart
    car = await make_node(world, world.alice)  # the device's peer: it buys and pays
    device_key = dev_keys(6)[5]  # holds no tokens on this chain
    device = PeerProcess(
        key=5,
        store=tmp_path / "device.sqlite3",
        host=host.endpoint,
        host_address=host.key.address,
        watcher="host",
        codec="cbor",
    )
    await device.start()
    try:
        assert device.address == device_key.address
        assert await world.token.balance_of(device_key.address) == 0
        eth_before = await world.ledger.balance(device_key.address)
        car_before = await world.token.balance_of(world.alice.address)
        opened = await device.call(
            {
                "cmd": "open",
                "peer": str(car.address),
                "endpoint": car.endpoint,
                "asset": str(world.token.address),
                "deposit": str(2 * UNIT),  # funded by the host
                "peer_deposit": str(5 * UNIT),
                "challenge_period": 60,
            }
        )
        channel = bytes.fromhex(opened["channel"][2:])
        await device.call({"cmd": "pay", "channel": opened["channel"], "amount": str(UNIT // 10)})
        for _ in range(10):
            await car.pay(channel, UNIT // 10)  # the car pays for energy: 1 UNIT in all
        paid = UNIT

        async def watcher_holds_it() -> bool:
            entry = await _party_view(running.client, channel, device_key.address)
            return bool(entry["held_transferred"] == str(paid))

        await wait_for(watcher_holds_it, what="the device's newest proof at the watcher")
        await device.kill()  # offline, without a word

        car_state = next(s for s in car.channel_states() if s.channel_id == channel)
        terms = car_state.terms
        onchain = OnchainChannel(
            terms.a, terms.b, terms.asset, terms.challenge_period, terms.nonce,
            deposit_a=2 * UNIT, deposit_b=5 * UNIT,
        )  # fmt: skip
        # The car closes claiming it paid only two tenths, with the device's own proof.
        assert car_state.received_signature is not None
        await world.hub.close(
            world.alice, onchain, UNIT // 10, 2 * UNIT // 10, car_state.received_signature
        )

        async def challenged() -> bool:
            closing = (await running.client.channel(channel))["onchain"]["closing"]
            return closing is not None and closing["transferred_b"] == str(paid)

        await wait_for(challenged, what="the watcher's challenge")
        await world.ledger.advance_time(61)

        async def settled() -> bool:
            return bool((await running.client.channel(channel))["onchain"]["phase"] == "settled")

        await wait_for(settled, what="the watcher's settlement")

        await device.start()  # the same store, through the same host
        expected = 2 * UNIT - UNIT // 10 + paid

        async def device_sees_it() -> dict[str, Any] | None:
            info = await device.call({"cmd": "info", "channel": opened["channel"]})
            return info if info["phase"] == "settled" else None

        info = await wait_for(device_sees_it, what="the device's node to see the settlement")
        assert info["final_balance_mine"] == str(expected)
        assert await world.token.balance_of(device_key.address) == expected
        assert await world.ledger.balance(device_key.address) == eth_before  # never sent a tx
        assert await world.token.balance_of(world.alice.address) == car_before + UNIT // 10 - paid
        [challenge, settle] = await running.client.disputes()
        assert (challenge["kind"], challenge["beneficiary"]) == (
            "challenge",
            device_key.address.checksum,
        )
        assert settle["kind"] == "settle"
    finally:
        await device.stop()
        await host.stop()
        await watcher_http.close()
