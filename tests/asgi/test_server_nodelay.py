"""Every connection the server accepts has Nagle's algorithm off: an answer's body,
written after its head, goes out at once instead of waiting for the client's delayed
ACK (~40 ms on Linux for every answer FastAPI sends in two parts)."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from m2mpay.asgi import AsgiServer


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def test_accepted_connections_have_tcp_nodelay() -> None:
    server = AsgiServer(_app, name="test API")
    url = await server.start()
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/")).status_code == 200
            connections = server._server.server_state.connections
            assert connections
            for protocol in connections:
                sock = protocol.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        await server.stop()
