"""Commands to devices, and the session supplies that issue them.

A command is stored before it is sent, goes out in order per device, and is sent
again at every login until the device acknowledges it; a newer command for the same
session replaces an unacknowledged one (targets are absolute). Readings a device
reports reach the supply of their session; a reading for a session no supply runs
yet (the daemon restarted, its sessions resume shortly) is held for it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from m2mpay.bus.connection import DeviceConnection
from m2mpay.bus.messages import BusMessage, CommandMessage
from m2mpay.bus.store import CommandRecord, DeviceStore, ServiceRecord
from m2mpay.bus.supply import DeviceSupply
from m2mpay.crypto import Address
from m2mpay.lifecycle import run_in_background

__all__ = ["CommandQueue"]

log = logging.getLogger("m2mpay.bus.server")

_HELD_READINGS: Final = 4096  # readings kept for sessions not (yet) resumed here


class CommandQueue:
    """See the module docstring. `service_of(device, name)` and `link_of(device)` say
    what the bus knows now."""

    def __init__(
        self,
        store: DeviceStore,
        service_of: Callable[[Address, str], ServiceRecord | None],
        link_of: Callable[[Address], DeviceConnection | None],
    ) -> None:
        self.store = store
        self._service_of = service_of
        self._link_of = link_of
        self._supplies: dict[tuple[Address, bytes], DeviceSupply] = {}
        self._readings: dict[tuple[Address, bytes], int] = {}
        self._locks: dict[Address, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _lock(self, device: Address) -> asyncio.Lock:
        return self._locks.setdefault(device, asyncio.Lock())

    # ------------------------------------------------------------------ supplies

    def supply(self, device: Address, service: str, session: bytes) -> DeviceSupply:
        return DeviceSupply(self, device, service, session)

    def attach(self, supply: DeviceSupply) -> None:
        key = (supply.device, supply.session)
        self._supplies[key] = supply
        held = self._readings.get(key)
        if held is not None:
            supply.reading(held)

    def detach(self, supply: DeviceSupply) -> None:
        key = (supply.device, supply.session)
        if self._supplies.get(key) is supply:
            del self._supplies[key]
        self._readings.pop(key, None)

    def reading(self, device: Address, session: bytes, service: str, delivered: int) -> None:
        key = (device, session)
        supply = self._supplies.get(key)
        if supply is not None:
            if supply.service == service:
                supply.reading(delivered)
            return
        self._readings[key] = max(self._readings.pop(key, 0), delivered)
        if len(self._readings) > _HELD_READINGS:
            del self._readings[next(iter(self._readings))]

    # ------------------------------------------------------------------ commands

    def command(self, supply: DeviceSupply, action: str, until_units: int, units: int) -> None:
        record = CommandRecord(
            secrets.token_bytes(16),
            supply.device,
            supply.session,
            supply.service,
            action,
            until_units,
            units,
            int(time.time() * 1000),
        )
        # In order per device: tasks start in creation order and the lock is fair.
        self._spawn(self._issue(record))

    async def _issue(self, command: CommandRecord) -> None:
        async with self._lock(command.device):
            await self.store.save_command(command)
            link = self._link_of(command.device)
            if link is not None:
                await link.send(self.message(command))

    def message(self, command: CommandRecord) -> CommandMessage:
        service = self._service_of(command.device, command.service)
        return CommandMessage(
            id="0x" + command.id.hex(),
            session="0x" + command.session.hex(),
            service=command.service,
            action=command.action,  # type: ignore[arg-type]
            until_units=command.until_units,
            units=command.units,
            seconds=command.units if service is not None and service.unit == "s" else None,
        )

    async def logged_in(
        self, device: Address, link: DeviceConnection, welcome: Callable[[int], BusMessage]
    ) -> None:
        """Greet a device with `welcome(pending)`, then send what it has not acknowledged;
        commands issued meanwhile wait, so none is sent twice or out of order."""
        async with self._lock(device):
            pending = await self.store.pending_commands(device)
            await link.send(welcome(len(pending)))
            for command in pending:
                await link.send(self.message(command))

    async def pending(self, device: Address) -> list[CommandRecord]:
        return await self.store.pending_commands(device)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every command queued so far is stored (and sent, if it can be)."""
        while self._tasks:
            done, _ = await asyncio.wait(list(self._tasks), timeout=timeout)
            if not done:
                log.warning("device commands still not stored after %g s", timeout)
                return

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        run_in_background(self._tasks, work, _storing_failed)


def _storing_failed(exc: BaseException) -> None:
    log.error("storing a device command failed: %r", exc)
