"""One device's WebSocket as the bus uses it: JSON text out, one message at a time."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from m2mpay.bus.messages import BusMessage
from m2mpay.crypto import Address

__all__ = ["DeviceConnection"]


class DeviceConnection:
    """Sends one message at a time (several tasks send: replies, commands); a dead
    socket just stops taking them, and what was not acknowledged goes again at the
    next login."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.device: Address | None = None  # once logged in
        self.closed = False
        self._lock = asyncio.Lock()

    async def send(self, message: BusMessage) -> bool:
        if self.closed:
            return False
        try:
            async with self._lock:
                await self.websocket.send_text(message.model_dump_json(exclude_none=True))
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closed = True
            return False
        return True

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.close(code, reason)
