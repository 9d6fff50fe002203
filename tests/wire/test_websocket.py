"""WebSocket transport specifics: binary only, no compression, bounded frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect

from m2mpay.errors import ConnectionClosed
from m2mpay.wire import MAX_FRAME_SIZE, WebSocketTransport

from .helpers import GUARD


@pytest.fixture
async def server() -> AsyncIterator[WebSocketTransport]:
    async with WebSocketTransport("127.0.0.1", 0) as transport:
        yield transport


async def test_text_messages_close_the_link(server: WebSocketTransport) -> None:
    async with connect(server.endpoint) as raw:
        link = await asyncio.wait_for(server.accept(), GUARD)
        await raw.send("a text message")
        with pytest.raises(ConnectionClosed, match="text message"):
            await asyncio.wait_for(link.recv(), GUARD)
        await asyncio.wait_for(raw.wait_closed(), GUARD)
        assert raw.close_code == 1003


async def test_compression_is_refused_even_when_offered(server: WebSocketTransport) -> None:
    async with connect(server.endpoint, compression="deflate") as raw:
        assert raw.response is not None
        assert "Sec-WebSocket-Extensions" not in raw.response.headers


async def test_a_frame_above_the_limit_from_a_raw_peer_breaks_the_link(
    server: WebSocketTransport,
) -> None:
    async with connect(server.endpoint, max_size=None) as raw:
        link = await asyncio.wait_for(server.accept(), GUARD)
        await raw.send(bytes(MAX_FRAME_SIZE + 1))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(link.recv(), GUARD)
        await asyncio.wait_for(raw.wait_closed(), GUARD)
        assert raw.close_code == 1009  # message too big
