"""Metered sessions in a `m2mpay.bench.peer` process (`--sessions STORE`).

Commands, one JSON line each (amounts as decimal strings):
    {"cmd": "session_offer", "asset": "0x…", "price": "…", "window": 20, "batch": 5,
     "rate": 8}                                   → {"offer": {…}}  (seller: simulated
                                                    meters delivering `rate` units/s each)
    {"cmd": "session_buy", "offer": {…}, "count": 1000, "seconds": 30}
                                                  → units, units_per_s, max_exposure_units…
    {"cmd": "session_stats"}                      → the seller's max exposure seen
    {"cmd": "session_start", "offer": {…}, "target_units": 0, "budget": "0"}
                                                  → {"session": "0x…", …} once running
    {"cmd": "session_info", "session": "0x…"}     → the session as this node sees it
    {"cmd": "session_stop", "session": "0x…"}     → the same, once stopped
    {"cmd": "session_list"}                       → {"sessions": [the same, for each]}
    {"cmd": "session_resale", "source": {…}, "commission": "…", "rate": 8}
                                                  → {"offer": {…}} (a reseller: each sale
                                                    buys its supply under `source`)
`session_offer` and `resale` with an `"offer"` publish that offer again (a seller that
restarted).
Exposure is sampled from every session's view four times a second: for the party
that delivers, units delivered and not yet paid; for the party that pays, units
paid and not yet delivered.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Final

from m2mpay.crypto import Address
from m2mpay.devices.simulated import EnergyMeter, Simulation, constant_power
from m2mpay.lifecycle import cancel_and_wait
from m2mpay.market.resale import Resale
from m2mpay.node import Node
from m2mpay.plain import from_plain, to_plain
from m2mpay.store import open_store
from m2mpay.stream import (
    FlowTotals,
    Leader,
    Offer,
    ServiceKind,
    SessionInfo,
    SessionManager,
    new_offer,
)
from m2mpay.stream.manager import SessionManagerConfig
from m2mpay.stream.supply import SupplyFactory

__all__ = ["SessionPeer", "exposure_units", "session_json"]

_SAMPLE_S: Final = 0.25


def exposure_units(info: SessionInfo) -> int:
    """Whole units one side is ahead of the other in the forward flow, as `info`'s owner sees."""
    flow = info.forward
    price = info.price or 1
    ahead = flow.value - flow.paid if info.we_sell else flow.paid - flow.value
    return max(0, -(-ahead // price))


class SessionPeer:
    def __init__(self, node: Node, store: Path) -> None:
        self.node = node
        self.sessions = SessionManager(
            node, open_store(store), config=SessionManagerConfig(tick_interval_s=1.0)
        )
        # Meters step four times a second, as a smart meter reporting in real time might.
        self.simulation = Simulation(step_s=0.25)
        self.max_exposure = 0
        self._resales: list[Resale] = []
        self._sampler: asyncio.Task[None] | None = None

    @property
    def resales(self) -> list[Resale]:
        return self._resales

    async def start(self) -> None:
        await self.sessions.start()
        self._sampler = asyncio.ensure_future(self._sample())

    async def stop(self) -> None:
        for resale in self._resales:
            await resale.close()
        await cancel_and_wait(self._sampler)
        await self.simulation.close()
        await self.sessions.stop()

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(_SAMPLE_S)
            for info in self.sessions.sessions():
                self.max_exposure = max(self.max_exposure, exposure_units(info))

    async def command(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.get("cmd")
        if name == "session_offer":
            return self._offer(command)
        if name == "session_buy":
            return await self._buy(command)
        if name == "session_start":
            started = await self.sessions.start_session(
                _offer_of(command),
                target_units=int(command.get("target_units", 0)),
                budget=int(command.get("budget", 0)),
            )
            return session_json(started)
        if name == "session_info":
            return session_json(self.sessions.session(_session_of(command)))
        if name == "session_stop":
            return session_json(await self.sessions.stop_session(_session_of(command)))
        if name == "session_list":
            return {"sessions": [session_json(info) for info in self.sessions.sessions()]}
        if name == "session_resale":
            return self._resale(command)
        if name == "session_stats":
            infos = self.sessions.sessions()
            return {
                "max_exposure_units": self.max_exposure,
                "sessions": len(infos),
                "units": sum(i.forward.units for i in infos),
            }
        raise ValueError(f"unknown command {name!r}")

    def _meter(self, command: dict[str, Any]) -> SupplyFactory:
        watts = float(command["rate"]) * 3600.0  # units of 1 Wh at `rate` per second
        return lambda _: EnergyMeter(self.simulation, constant_power(watts))

    def _resale(self, command: dict[str, Any]) -> dict[str, Any]:
        resale = Resale(
            self.sessions,
            _offer_of(command, "source"),
            commission=int(command["commission"]),
            meter=self._meter(command),
        )
        offer = resale.publish(offer=_offer_of(command) if "offer" in command else None)
        self._resales.append(resale)
        return {"offer": to_plain(offer, binary=False)}

    def _offer(self, command: dict[str, Any]) -> dict[str, Any]:
        if "offer" in command:
            offer = _offer_of(command)
        else:
            offer = new_offer(
                self.node.address,
                ServiceKind.ENERGY,
                "Wh",
                int(command["price"]),
                Address(command["asset"]),
                window=int(command["window"]),
                batch=int(command["batch"]),
                leader=Leader(command.get("leader", "deliverer")),
            )
        self.sessions.publish(offer, self._meter(command))
        return {"offer": to_plain(offer, binary=False)}

    async def _buy(self, command: dict[str, Any]) -> dict[str, Any]:
        offer = _offer_of(command)
        count, seconds = int(command["count"]), float(command["seconds"])
        gate = asyncio.Semaphore(int(command.get("concurrency", 100)))

        async def start_one() -> bytes:
            async with gate:
                return (await self.sessions.start_session(offer, timeout=120)).session_id

        clock = time.perf_counter
        began = clock()
        ids = await asyncio.gather(*(start_one() for _ in range(count)))
        started = clock()
        units_before = self._units(ids)
        await asyncio.sleep(seconds)
        units_after = self._units(ids)
        measured = clock() - started
        stops = await asyncio.gather(
            *(self.sessions.stop_session(i, "benchmark over", timeout=120) for i in ids)
        )
        return {
            "sessions": count,
            "start_seconds": started - began,
            "seconds": measured,
            "units": units_after - units_before,
            "units_per_s": (units_after - units_before) / measured,
            "max_exposure_units": self.max_exposure,
            "countersigned": sum(1 for info in stops if info.countersigned),
        }

    def _units(self, ids: list[bytes]) -> int:
        return sum(self.sessions.session(i).forward.units for i in ids)


def _offer_of(command: dict[str, Any], key: str = "offer") -> Offer:
    offer = from_plain(command[key])
    if not isinstance(offer, Offer):
        raise ValueError("not an offer")
    return offer


def _session_of(command: dict[str, Any]) -> bytes:
    return bytes.fromhex(str(command["session"]).removeprefix("0x"))


def session_json(info: SessionInfo) -> dict[str, Any]:
    def flow(totals: FlowTotals) -> dict[str, str]:
        return {"units": str(totals.units), "value": str(totals.value), "paid": str(totals.paid)}

    return {
        "session": info.id_hex,
        "channel": "0x" + info.channel_id.hex(),
        "phase": info.phase.value,
        "forward": flow(info.forward),
        "backward": flow(info.backward),
        "reason": info.stop_reason,
        "countersigned": info.countersigned,
        "supplies": None if info.supplies is None else "0x" + info.supplies.hex(),
    }
