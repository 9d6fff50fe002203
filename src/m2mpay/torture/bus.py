"""A device command on the bus: a session permits units of a device's service, which
the bus turns into a command it stores, then sends; the device acknowledges it. The
bus process is SIGKILLed at a moment drawn from the seed, around the permit, the
delivery or the acknowledgement. Restarted on its store, the bus must lose no stored
command, send again whatever the device has not acknowledged, never send again what
it acknowledged, and never command more units than were permitted."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from websockets.asyncio.client import connect

from m2mpay.bench.bus_device import RawDevice
from m2mpay.bench.processes import PeerProcess
from m2mpay.crypto import PrivateKey
from m2mpay.errors import M2MPayError
from m2mpay.ports import free_port
from m2mpay.torture.phase import Facts, OnShared
from m2mpay.torture.world import World

__all__ = ["BusCrash", "bus_violation"]

_LAMP = PrivateKey(bytes([11]) * 32)


class _Bus:
    def __init__(self, world: World) -> None:
        self.process = PeerProcess(
            key=9,
            store=world.files("bus") / "devices.sqlite3",
            port=free_port(),  # kept across restarts: the device dials it again
            module="m2mpay.bench.bus_peer",
        )

    async def start(self) -> None:
        await self.process.start()
        device, _ = await self.device()
        await device.register()
        await device.close()

    async def device(self) -> tuple[RawDevice, int]:
        """The lamp, connected and logged in, and how many commands the bus said it
        has pending for it (it sends them next)."""
        websocket = await connect(self.process.endpoint, proxy=None, open_timeout=10)
        device = RawDevice(websocket, _LAMP)
        device.challenge = await device.expect("challenge")
        welcome = await device.login()
        return device, int(welcome["pending"])

    async def stop(self) -> None:
        with contextlib.suppress(M2MPayError, OSError):
            await self.process.stop()


class BusCrash(OnShared[_Bus]):
    name = "bus.command"

    async def _share(self, world: World) -> _Bus:
        return await world.share("bus", _Bus, lambda: _Bus(world))

    def check(self, facts: Facts) -> str | None:
        return bus_violation(facts)

    async def trial(self, rng: random.Random) -> Facts:
        bus = self.shared
        session = "0x" + rng.randbytes(32).hex()
        units = rng.randint(1, 60)
        acks = rng.random() < 0.5
        device, _ = await bus.device()
        got: list[dict[str, Any]] = []
        acked: list[str] = []

        async def receive() -> None:
            while True:
                message = await device.recv(timeout=30)
                if message.get("type") == "command" and message["session"] == session:
                    got.append(message)
                    if acks:
                        await device.send({"type": "command_ack", "id": message["id"], "ok": True})
                        acked.append(message["id"])

        receiving = asyncio.ensure_future(receive())
        permitting = asyncio.ensure_future(
            bus.process.call(
                {
                    "cmd": "permit",
                    "device": _LAMP.address.checksum,
                    "service": "light",
                    "session": session,
                    "units": units,
                }
            )
        )
        await asyncio.sleep(rng.uniform(0.0, 0.15))
        await bus.process.kill()
        stored = permitting.done() and not permitting.cancelled() and not permitting.exception()
        if not permitting.done():
            permitting.cancel()
        with contextlib.suppress(BaseException):
            await permitting
        receiving.cancel()
        with contextlib.suppress(BaseException):
            await receiving
        await device.close()

        await bus.process.start()
        device, waiting = await bus.device()
        again = [await device.expect("command") for _ in range(waiting)]
        mine = [c for c in again if c["session"] == session]
        for command in again:
            await device.send({"type": "command_ack", "id": command["id"], "ok": True})
        await device.close()
        for _ in range(50):  # the acknowledgements are stored as they come in
            device, left = await bus.device()
            await device.close()
            if left == 0:
                break
            await asyncio.sleep(0.1)
        return {
            "permitted": units,
            "stored": int(stored),
            "received": len(got),
            "acked": len(acked),
            "redelivered": len(mine),
            "same": int(bool(got) and bool(mine) and got[0]["id"] == mine[0]["id"]),
            "most_units": max((c["until_units"] for c in got + mine), default=0),
            "pending_after_ack": left,
        }


def bus_violation(facts: Facts) -> str | None:
    if facts["most_units"] > facts["permitted"]:
        return (
            f"a command released {facts['most_units']} units, "
            f"only {facts['permitted']} were permitted"
        )
    if facts["stored"] and not facts["received"] and not facts["redelivered"]:
        return "a command the bus said it stored was lost in the kill"
    if facts["received"] and not facts["acked"] and not facts["redelivered"]:
        return "a command the device received and never acknowledged was not sent again"
    if facts["received"] and facts["redelivered"] and not facts["same"]:
        return "the command sent again is not the one the device had received"
    if facts["pending_after_ack"]:
        return f"{facts['pending_after_ack']} acknowledged command(s) are sent again"
    return None
