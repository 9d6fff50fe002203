"""Events as a stream: Server-Sent Events of every channel, session and device event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from m2mpay.api.gateway import Gateway

__all__ = ["event_routes"]

_HEARTBEAT_S: Final = 15.0


def event_routes(gw: Gateway) -> APIRouter:
    router = APIRouter(tags=["events"])

    @router.get(
        "/v1/events",
        dependencies=[Depends(gw.credentials.reader)],
        response_class=StreamingResponse,
        summary="Server-Sent Events: `channel`, `session` and `device` events as they happen",
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def events() -> StreamingResponse:
        queue = gw.events.subscribe()

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                while True:
                    try:
                        async with asyncio.timeout(_HEARTBEAT_S):
                            item = await queue.get()
                    except TimeoutError:
                        yield b": keep-alive\n\n"  # a comment line: proxies keep the stream open
                        continue
                    kind = str(item.get("kind", "event")).encode()
                    yield b"event: " + kind + b"\ndata: " + orjson.dumps(item) + b"\n\n"
            finally:
                gw.events.unsubscribe(queue)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router
