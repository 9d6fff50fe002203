"""A device and its host: the device is a node with no ledger of its own that pays a
peer over a channel its host funded; SIGKILL the device, or its host, while the
payments stream. After the restart the device must lose no acknowledged payment and
close, through the host, with the chain paying what the newest proofs say."""

from __future__ import annotations

import asyncio
import random

from m2mpay.bench.processes import PeerProcess
from m2mpay.ports import free_port
from m2mpay.torture.pair import Attended, Pair, payment_violation
from m2mpay.torture.phase import Facts, OnShared
from m2mpay.torture.world import World

__all__ = ["DeviceCrash"]


class _Hosted(Attended):
    """The host process, the device on it (the payer) and the device's peer (the payee)."""

    def __init__(self, world: World) -> None:
        directory = world.files("device")
        keys = world.keys
        port = free_port()  # kept across restarts: the device reconnects to it
        self.host = PeerProcess(
            key=keys.host,
            hub=world.hub.address,
            store=directory / "host.unused",
            chain_dir=world.chain_dir,
            port=port,
            device_host=True,
        )
        self.device = PeerProcess(
            key=keys.device,
            store=directory / "device.sqlite3",
            port=free_port(),
            window=256,
            reconnect_max_delay=0.5,
            host=f"ws://127.0.0.1:{port}",
        )
        peer = world.peer("device", "peer", keys.device_peer)
        super().__init__(self.host, Pair(world, self.device, peer))


class DeviceCrash(OnShared[_Hosted]):
    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim
        self.name = f"device.{victim}"

    async def _share(self, world: World) -> _Hosted:
        return await world.share("hosted", _Hosted, lambda: _Hosted(world))

    def check(self, facts: Facts) -> str | None:
        return payment_violation("device" if self.victim == "device" else "peer", facts)

    async def trial(self, rng: random.Random) -> Facts:
        hosted, pair = self.shared, self.shared.pair
        since, channel = await pair.open_streaming(rng.randint(1, 10**6))  # host-funded
        await asyncio.sleep(rng.uniform(0.1, 0.8))
        if self.victim == "device":
            acked = await pair.crash(pair.payer, channel)
            restored = await pair.total("payer", channel)
        else:
            acked = await pair.crash(hosted.host, channel)
            # The host holds no payments: the peer's store must still hold them all.
            restored = await pair.total("payee", channel)
        await pair.stop_stream(channel)
        facts: Facts = {"acked": acked, "restored": restored}
        return facts | await pair.settled_facts(channel, since)
