"""A device bus in its own process, driven by JSON lines on stdin, so that it can be
SIGKILLed like a node (`python -m m2mpay.bench.bus_peer --store S --port P`).

    {"cmd": "permit", "device": "0x…", "service": "light", "session": "0x…", "units": 5}
        → {"stored": true} once the command that permit makes is durable
    {"cmd": "pending", "device": "0x…"} → {"commands": [{id, session, action,
        until_units, units}, …]} (not yet acknowledged, oldest first)
    {"cmd": "stop"}                     → {"stopped": true}
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from m2mpay.asgi import AsgiServer
from m2mpay.bench.bus_device import WS_PATH, bus_app
from m2mpay.bench.lines import answer_lines, say
from m2mpay.bus.server import DeviceBus
from m2mpay.bus.sqlite import SqliteDeviceStore
from m2mpay.bus.supply import DeviceSupply
from m2mpay.chain.devkeys import dev_keys

__all__ = ["main"]


async def _command(
    bus: DeviceBus, supplies: dict[bytes, DeviceSupply], command: dict[str, Any]
) -> dict[str, Any]:
    name = command.get("cmd")
    if name == "permit":
        session = bytes.fromhex(command["session"][2:])
        supply = supplies.get(session)
        if supply is None:
            supply = bus.supply_for(command["device"], command["service"], session)
            await supply.start(lambda _: None, 0)
            supplies[session] = supply
        supply.permit(int(command["units"]))
        await bus.drain()
        return {"stored": True}
    if name == "pending":
        return {
            "commands": [
                {
                    "id": "0x" + record.id.hex(),
                    "session": "0x" + record.session.hex(),
                    "action": record.action,
                    "until_units": record.until_units,
                    "units": record.units,
                }
                for record in await bus.pending_commands(command["device"])
            ]
        }
    raise ValueError(f"unknown command {name!r}")


async def _serve(args: argparse.Namespace) -> None:
    bus = DeviceBus(dev_keys(args.key + 1)[args.key].address, SqliteDeviceStore(Path(args.store)))
    await bus.start()
    server = AsgiServer(bus_app(bus), port=args.port, name="device bus")
    base = await server.start()
    url = base.replace("http://", "ws://") + WS_PATH
    supplies: dict[bytes, DeviceSupply] = {}
    try:
        await answer_lines(
            {"ready": url, "address": str(bus.server)},
            lambda command: _command(bus, supplies, command),
        )
    finally:
        await server.stop()
        await bus.stop()
    say({"stopped": True})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m m2mpay.bench.bus_peer")
    parser.add_argument("--store", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", type=int, default=9, help="dev account of the bus's server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
