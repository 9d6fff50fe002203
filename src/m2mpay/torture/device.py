"""A device and its host: the device is a node with no ledger of its own that pays a
peer over a channel its host funded; SIGKILL the device, or its host, while the
payments stream. After the restart the device must lose no acknowledged payment and
close, through the host, with the chain paying what the newest proofs say."""

from __future__ import annotations

import asyncio
import contextlib
import random

from m2mpay.bench.processes import PeerProcess
from m2mpay.errors import M2MPayError
from m2mpay.torture.pair import Pair, payment_violation
from m2mpay.torture.phase import Facts, Phase
from m2mpay.torture.world import World, free_port

__all__ = ["DeviceCrash"]


class _Hosted:
    """The host process, the device on it (the payer) and the device's peer (the payee)."""

    def __init__(self, world: World) -> None:
        directory = world.directory / f"device-{world.generation}"
        directory.mkdir(parents=True, exist_ok=True)
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
        self.pair = Pair(world, self.device, world.peer("device", "peer", keys.device_peer))

    async def start(self) -> None:
        await self.host.start()
        await self.pair.start()

    async def stop(self) -> None:
        await self.pair.stop()
        with contextlib.suppress(M2MPayError, OSError):
            await self.host.stop()


class DeviceCrash(Phase):
    def __init__(self, victim: str) -> None:
        self.victim = victim
        self.name = f"device.{victim}"
        self._hosted: _Hosted | None = None
        self._world: World | None = None

    async def setup(self, world: World) -> None:
        hosted = world.shared.get("hosted")
        if not isinstance(hosted, _Hosted):
            hosted = _Hosted(world)
            world.shared["hosted"] = hosted
            await hosted.start()
        self._hosted = hosted
        self._world = world

    async def teardown(self) -> None:
        self._hosted = None  # the world stops it with the rest

    def check(self, facts: Facts) -> str | None:
        return payment_violation("device" if self.victim == "device" else "peer", facts)

    async def trial(self, rng: random.Random) -> Facts:
        assert self._hosted is not None
        hosted, pair = self._hosted, self._hosted.pair
        assert self._world is not None
        since = await self._world.ledger.block_number()
        channel = await pair.open()  # funded by the host
        await pair.payer.call(
            {"cmd": "stream_start", "channel": channel, "amount": str(rng.randint(1, 10**6))}
        )
        await asyncio.sleep(rng.uniform(0.1, 0.8))
        if self.victim == "device":
            acked = int((await pair.info("payer", channel))["acked_total"])
            await pair.restart("payer")
            restored = int((await pair.info("payer", channel))["sent_total"])
        else:
            await hosted.host.kill()
            acked = int((await pair.info("payer", channel))["acked_total"])
            await hosted.host.start()
            # The host holds no payments: the peer's store must still hold them all.
            restored = int((await pair.info("payee", channel))["received_total"])
        facts: Facts = {"acked": acked, "restored": restored}
        await pair.payer.call({"cmd": "stream_stop", "channel": channel})
        payer, payee = await pair.agreed(channel)
        facts |= {
            "sent": int(payer["sent_total"]),
            "acked_total": int(payer["acked_total"]),
            "received": int(payee["received_total"]),
        }
        return facts | await pair.close_and_settle(channel, since)
