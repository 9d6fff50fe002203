"""The device WebSocket bus: devices log in, register services, take commands and
report their meters and telemetry (the protocol: `m2mpay.bus.messages`).

Each connection runs the pure machine of `m2mpay.bus.machine`; what it
returns is performed in one place, `_perform`, which stores before it answers: a
registration is acknowledged once stored, a telemetry record once stored, and a
command is stored before it is sent. Commands a device has not acknowledged stay in
the store and are sent again, oldest first, whenever it logs in (after a dropped
connection or a restart of the bus); they carry absolute targets, so a repeat is
harmless.

A device's service is sold through metered sessions: `supply_factory(device,
service)` is the `SupplyFactory` of an offer, and each session's `DeviceSupply`
turns permits into commands and the device's readings into meter reports.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from m2mpay.bus.commands import CommandQueue
from m2mpay.bus.connection import DeviceConnection
from m2mpay.bus.events import (
    BusEvent,
    BusListener,
    CommandAcknowledged,
    DeviceConnected,
    DeviceDisconnected,
    DeviceInfo,
    DeviceRegistered,
    DeviceStateChanged,
    TelemetryStored,
)
from m2mpay.bus.machine import (
    CLOSE_REPLACED,
    BusOutput,
    Close,
    Connection,
    ConnectionInput,
    ConnectionPhase,
    LoggedIn,
    LoginTimedOut,
    Received,
    Registered,
    Send,
    StatusReported,
    TelemetryReceived,
    open_connection,
    step,
)
from m2mpay.bus.messages import (
    DeviceRegisterMessage,
    DeviceStatusMessage,
    ErrorMessage,
    RegisteredMessage,
    TelemetryAckMessage,
    TelemetryMessage,
    WelcomeMessage,
)
from m2mpay.bus.store import CommandRecord, DeviceRecord, DeviceStore, ServiceRecord
from m2mpay.bus.supply import DeviceSupply
from m2mpay.crypto import Address
from m2mpay.errors import CryptoError, DeviceError, StoreError
from m2mpay.lifecycle import Startable
from m2mpay.provenance.telemetry import TelemetryBatcher, TelemetryProof
from m2mpay.stream.supply import SupplyFactory, SupplyRequest

__all__ = ["BusConfig", "DeviceBus"]

log = logging.getLogger("m2mpay.bus.server")

_CLOSE_GOING_AWAY: Final = 1001
_CLOSE_ERROR: Final = 1011
_CLOSE_TRY_LATER: Final = 1013


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class BusConfig:
    challenge_ttl_s: float = 30.0
    allowed: frozenset[Address] | None = None  # None: any device that proves its key


class DeviceBus(Startable):
    """See the module docstring. `server` is the daemon's address, which devices sign
    into their logins; `start()` opens the store and starts the telemetry batcher."""

    def __init__(
        self,
        server: Address,
        store: DeviceStore,
        *,
        telemetry: TelemetryBatcher | None = None,
        config: BusConfig | None = None,
    ) -> None:
        self.server = server
        self.store = store
        self.telemetry_log = telemetry or TelemetryBatcher(store)
        self.config = config or BusConfig()
        self._devices: dict[Address, DeviceRecord] = {}
        self._links: dict[Address, DeviceConnection] = {}
        self._last_seen: dict[Address, int] = {}
        self._status: dict[Address, DeviceStatusMessage] = {}
        self._listeners: list[BusListener] = []
        self._commands = CommandQueue(store, self._service, self._links.get)
        self._running = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.store.open()
        self._devices = {d.address: d for d in await self.store.load_devices()}
        await self.telemetry_log.start()
        self._running = True

    async def stop(self) -> None:
        """Close every connection, finish storing queued commands, close the store."""
        if not self._running:
            return
        self._running = False
        for link in list(self._links.values()):
            await link.close(_CLOSE_GOING_AWAY, "the bus is stopping")
        await self.drain()
        await self.telemetry_log.stop()
        await self.store.close()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every command queued so far is stored (and sent, if it can be)."""
        await self._commands.drain(timeout)

    # ------------------------------------------------------------------ reads

    def add_listener(self, listener: BusListener) -> None:
        """Call `listener(event)` for registrations, connections, acks and telemetry."""
        self._listeners.append(listener)

    def _emit(self, event: BusEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a device bus listener failed")

    def devices(self) -> list[DeviceInfo]:
        return [self._info(record) for record in self._devices.values()]

    def device(self, device: Address | str) -> DeviceInfo:
        return self._info(self._record(device))

    def is_connected(self, device: Address) -> bool:
        link = self._links.get(device)
        return link is not None and not link.closed

    def _record(self, device: Address | str) -> DeviceRecord:
        try:
            address = Address(device)
        except CryptoError:
            raise DeviceError("unknown_device", f"{device!r} is not a device address") from None
        record = self._devices.get(address)
        if record is None:
            raise DeviceError("unknown_device", f"no device {address} has registered")
        return record

    def _info(self, record: DeviceRecord) -> DeviceInfo:
        status = self._status.get(record.address)
        return DeviceInfo(
            record.address,
            record.name,
            record.services,
            record.registered_ms,
            self.is_connected(record.address),
            self._last_seen.get(record.address, 0),
            status.state if status is not None else "unknown",
            dict(status.detail) if status is not None else {},
        )

    async def telemetry(
        self, device: Address | str, since_ms: int = 0, *, after_seq: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """A device's telemetry measured at or after `since_ms` (Unix ms by the device's
        clock) and after `after_seq`, oldest first: seq, at_ms, received_ms (the bus's
        clock), data (the JSON object) and batch (None until batched for anchoring)."""
        address = self._record(device).address
        records = await self.telemetry_log.records(
            address, since_ms=since_ms, after_seq=after_seq, limit=limit
        )
        return [
            {
                "seq": r.seq,
                "at_ms": r.at_ms,
                "received_ms": r.received_ms,
                "data": orjson.loads(r.data),
                "batch": r.batch,
            }
            for r in records
        ]

    async def prove(self, device: Address | str, seq: int) -> TelemetryProof:
        return await self.telemetry_log.prove(self._record(device).address, seq)

    async def pending_commands(self, device: Address | str) -> list[CommandRecord]:
        """Commands the device has not acknowledged yet, oldest first."""
        return await self._commands.pending(self._record(device).address)

    def _service(self, device: Address, name: str) -> ServiceRecord | None:
        record = self._devices.get(device)
        return record.service(name) if record is not None else None

    # ------------------------------------------------------------------ supplies

    def supply_for(
        self, device: Address | str, service: str, session: bytes | None = None
    ) -> DeviceSupply:
        """The device's `service` as the supply of one session (`session`: its id)."""
        record = self._record(device)
        if record.service(service) is None:
            raise DeviceError("unknown_service", f"device {record.address} has no {service!r}")
        return self._commands.supply(record.address, service, session or secrets.token_bytes(32))

    def supply_factory(self, device: Address | str, service: str) -> SupplyFactory:
        """What an offer of the device's `service` supplies each session with; raises
        `DeviceError` now if the device or the service is unknown."""
        address = self.supply_for(device, service).device

        def make(request: SupplyRequest) -> DeviceSupply:
            return self.supply_for(address, service, request.session_id)

        return make

    # ------------------------------------------------------------------ connections

    async def handle(self, websocket: WebSocket) -> None:
        """Serve one device connection (a Starlette/FastAPI WebSocket route)."""
        if not self._running:
            await websocket.close(_CLOSE_TRY_LATER, "the bus is not running")
            return
        await websocket.accept()
        link = DeviceConnection(websocket)
        connection, outputs = open_connection(
            self.server,
            secrets.token_bytes(32),
            _now_ms(),
            int(self.config.challenge_ttl_s * 1000),
            self.config.allowed,
        )
        try:
            await self._perform(link, outputs)
            while connection.phase is not ConnectionPhase.CLOSED and not link.closed:
                inp = await self._next_input(websocket, connection)
                if inp is None:
                    break
                connection, outputs = step(connection, inp)
                await self._perform(link, outputs)
        except WebSocketDisconnect:
            pass
        finally:
            await self._forget(link)

    async def _next_input(
        self, websocket: WebSocket, connection: Connection
    ) -> ConnectionInput | None:
        """What comes next: a message, the login deadline, or None when the peer left."""
        timeout = None
        if connection.phase is ConnectionPhase.CHALLENGED:
            timeout = max(0.0, (connection.expires_ms - _now_ms()) / 1000)
        try:
            async with asyncio.timeout(timeout):
                message = await websocket.receive()
        except TimeoutError:
            return LoginTimedOut(_now_ms())
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        data: str | bytes = text if text is not None else message.get("bytes") or b""
        return Received(data, _now_ms())

    async def _forget(self, link: DeviceConnection) -> None:
        link.closed = True
        device = link.device
        if device is not None and self._links.get(device) is link:
            del self._links[device]
            self._last_seen[device] = _now_ms()
            self._emit(DeviceDisconnected(device))

    # ------------------------------------------------------------------ effects

    async def _perform(self, link: DeviceConnection, outputs: tuple[BusOutput, ...]) -> None:
        """The one place where the bus acts: send, close, store, then answer."""
        try:
            for output in outputs:
                if isinstance(output, Send):
                    await link.send(output.message)
                elif isinstance(output, Close):
                    await link.close(output.code, output.reason)
                elif isinstance(output, LoggedIn):
                    await self._logged_in(link, output.device)
                elif isinstance(output, Registered):
                    await self._register(link, output.device, output.message)
                elif isinstance(output, CommandAcknowledged):
                    await self._acknowledge(output)
                elif isinstance(output, StatusReported):
                    self._reported(output.device, output.message)
                elif isinstance(output, TelemetryReceived):
                    await self._telemetry_in(link, output.device, output.message)
        except StoreError as exc:
            # Nothing is acknowledged that is not stored: tell the device and hang up.
            log.error("device store failed: %s", exc)
            await link.send(ErrorMessage(code="unavailable", message="the bus cannot store now"))
            await link.close(_CLOSE_ERROR, "store failure")

    async def _logged_in(self, link: DeviceConnection, device: Address) -> None:
        link.device = device
        previous = self._links.get(device)
        self._links[device] = link
        self._last_seen[device] = _now_ms()
        if previous is not None and previous is not link:
            await previous.close(CLOSE_REPLACED, "logged in on another connection")
        record = self._devices.get(device)
        services = [s.name for s in record.services] if record is not None else []
        stored = await self.telemetry_log.last_seq(device)

        def welcome(pending: int) -> WelcomeMessage:
            return WelcomeMessage(
                device=device.checksum, telemetry_seq=stored, pending=pending, services=services
            )

        await self._commands.logged_in(device, link, welcome)
        self._emit(DeviceConnected(device))

    async def _register(
        self, link: DeviceConnection, device: Address, message: DeviceRegisterMessage
    ) -> None:
        # A device describes its services in their plain form.
        services = tuple(ServiceRecord.from_dict(s.model_dump()) for s in message.services)
        record = DeviceRecord(device, message.name, services, _now_ms())
        await self.store.save_device(record)
        self._devices[device] = record
        await link.send(RegisteredMessage(services=[s.name for s in services]))
        self._emit(DeviceRegistered(self._info(record)))

    async def _acknowledge(self, ack: CommandAcknowledged) -> None:
        # An ack of a command since replaced by a newer one settles nothing: that is fine.
        if await self.store.settle_command(ack.device, ack.command_id, ack.ok):
            if not ack.ok:
                log.warning("device %s refused a command: %s", ack.device, ack.error)
            self._emit(ack)

    def _reported(self, device: Address, message: DeviceStatusMessage) -> None:
        before = self._status.get(device)
        self._status[device] = message
        self._last_seen[device] = _now_ms()
        for meter in message.sessions:
            session = bytes.fromhex(meter.session[2:])
            self._commands.reading(device, session, meter.service, meter.delivered)
        if before is None or before.state != message.state:
            self._emit(DeviceStateChanged(device, message.state))

    async def _telemetry_in(
        self, link: DeviceConnection, device: Address, message: TelemetryMessage
    ) -> None:
        stored = await self.telemetry_log.add(device, message, _now_ms())
        self._last_seen[device] = _now_ms()
        await link.send(TelemetryAckMessage(seq=message.seq, duplicate=not stored))
        if stored:
            self._emit(TelemetryStored(device, message.seq))
