"""One conformance suite for every `Transport`: in-memory, WebSocket and MQTT."""

from __future__ import annotations

import asyncio
import socket

import pytest

from m2mpay.crypto import PrivateKey
from m2mpay.errors import ConnectionClosed, TransportError
from m2mpay.wire import MAX_FRAME_SIZE, MAX_MESSAGE_SIZE, Link, Transport, open_transport
from tests.conftest import Broker

from .conftest import TransportFactory

# A guard against hangs only: every test finishes far sooner when the code is right.
GUARD = 30.0


async def linked(client: Transport, server: Transport) -> tuple[Link, Link]:
    """A link from `client` to `server`, both ends."""
    async with asyncio.timeout(GUARD):
        mine = await client.connect(server.endpoint)
        theirs = await server.accept()
    return mine, theirs


async def receive(link: Link, count: int) -> list[bytes]:
    async with asyncio.timeout(GUARD):
        return [await link.recv() for _ in range(count)]


def numbered(count: int, start: int = 0, tag: bytes = b"") -> list[bytes]:
    return [tag + i.to_bytes(4, "big") for i in range(start, start + count)]


async def test_10000_frames_arrive_in_order(transports: list[Transport]) -> None:
    a, b = await linked(transports[0], transports[1])
    frames = numbered(10_000)
    received = asyncio.ensure_future(receive(b, len(frames)))
    for frame in frames[:5000]:
        await a.send(frame)
    for start in range(5000, 10_000, 250):
        await a.send_many(frames[start : start + 250])
    assert await received == frames


@pytest.mark.parametrize("size", [0, 1, 1000, 65_536, MAX_MESSAGE_SIZE, MAX_FRAME_SIZE])
async def test_frames_up_to_the_limit_arrive_whole(transports: list[Transport], size: int) -> None:
    a, b = await linked(transports[0], transports[1])
    frame = bytes(range(256)) * (size // 256) + bytes(size % 256)
    await a.send(frame)
    await b.send(frame)
    assert await receive(b, 1) == [frame]
    assert await receive(a, 1) == [frame]


async def test_oversized_frame_is_refused_and_link_stays_usable(
    transports: list[Transport],
) -> None:
    a, b = await linked(transports[0], transports[1])
    with pytest.raises(TransportError, match="above the"):
        await a.send(bytes(MAX_FRAME_SIZE + 1))
    with pytest.raises(TransportError, match="above the"):
        await a.send_many([b"ok", bytes(MAX_FRAME_SIZE + 1)])
    await a.send(b"after")
    assert await receive(b, 1) == [b"after"]


async def test_frames_are_delivered_as_immutable_copies(transports: list[Transport]) -> None:
    a, b = await linked(transports[0], transports[1])
    buffer = bytearray(b"original")
    await a.send(buffer)
    await a.send_many([buffer, memoryview(buffer)])
    buffer[:] = b"mutated!"
    got = await receive(b, 3)
    assert got == [b"original"] * 3
    assert all(type(frame) is bytes for frame in got)


async def test_both_directions_at_once(transports: list[Transport]) -> None:
    a, b = await linked(transports[0], transports[1])
    forward, backward = numbered(2000, tag=b"f"), numbered(2000, tag=b"b")

    async def pump(link: Link, frames: list[bytes]) -> None:
        for i in range(0, len(frames), 100):
            await link.send(frames[i])
            await link.send_many(frames[i + 1 : i + 100])

    results = await asyncio.gather(
        pump(a, forward), pump(b, backward), receive(b, len(forward)), receive(a, len(backward))
    )
    assert results[2] == forward
    assert results[3] == backward


async def test_several_links_at_once_keep_their_frames_apart(
    transports: list[Transport],
) -> None:
    t0, t1, t2 = transports
    pairs = [
        await linked(t0, t1),
        await linked(t0, t1),  # a second link between the same two transports
        await linked(t0, t2),
        await linked(t2, t1),
    ]
    tags = [f"link{i}:".encode() for i in range(len(pairs))]
    sends = [
        mine.send_many(numbered(300, tag=tag)) for (mine, _), tag in zip(pairs, tags, strict=True)
    ]
    replies = [
        theirs.send_many(numbered(300, tag=b"re-" + tag))
        for (_, theirs), tag in zip(pairs, tags, strict=True)
    ]
    await asyncio.gather(*sends, *replies)
    for (mine, theirs), tag in zip(pairs, tags, strict=True):
        assert await receive(theirs, 300) == numbered(300, tag=tag)
        assert await receive(mine, 300) == numbered(300, tag=b"re-" + tag)


async def test_close_is_seen_by_the_other_side_after_earlier_frames(
    transports: list[Transport],
) -> None:
    a, b = await linked(transports[0], transports[1])
    await a.send_many(numbered(50))
    await a.close()
    assert a.closed
    assert await receive(b, 50) == numbered(50)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(b.recv(), GUARD)
    assert b.closed
    with pytest.raises(ConnectionClosed):
        await b.send(b"too late")
    with pytest.raises(ConnectionClosed):
        await a.send(b"too late")
    with pytest.raises(ConnectionClosed):
        await a.recv()
    await a.close()  # idempotent
    await b.close()


async def test_close_wakes_a_pending_recv_on_both_sides(transports: list[Transport]) -> None:
    a, b = await linked(transports[0], transports[1])
    waiting_a = asyncio.ensure_future(a.recv())
    waiting_b = asyncio.ensure_future(b.recv())
    await asyncio.sleep(0.01)
    await b.close()
    for waiting in (waiting_a, waiting_b):
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(waiting, GUARD)


async def test_stop_closes_every_link(make_transport: TransportFactory) -> None:
    server, client = make_transport(), make_transport()
    async with server, client:
        links = [await linked(client, server) for _ in range(2)]
        await server.stop()
        for mine, _ in links:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(mine.recv(), GUARD)
        with pytest.raises(TransportError):
            await server.accept()
    for mine, theirs in links:
        assert mine.closed
        assert theirs.closed


async def test_stop_wakes_a_pending_accept(make_transport: TransportFactory) -> None:
    transport = make_transport()
    await transport.start()
    waiting = asyncio.ensure_future(transport.accept())
    await asyncio.sleep(0.01)
    await transport.stop()
    with pytest.raises(TransportError):
        await asyncio.wait_for(waiting, GUARD)


def _unused_endpoint(kind: str, request: pytest.FixtureRequest) -> str:
    if kind == "memory":
        return "mem://nobody-listens-here"
    if kind == "websocket":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return f"ws://127.0.0.1:{port}"
    broker: Broker = request.getfixturevalue("mosquitto")
    return f"mqtt://{broker.host}:{broker.port}/{PrivateKey.generate().address}"


async def test_connect_to_nothing_raises_transport_error(
    transports: list[Transport], transport_kind: str, request: pytest.FixtureRequest
) -> None:
    endpoint = _unused_endpoint(transport_kind, request)
    with pytest.raises(TransportError):
        await asyncio.wait_for(transports[0].connect(endpoint), GUARD)
    with pytest.raises(TransportError):
        await transports[0].connect("gopher://nowhere")


async def test_endpoint_names_a_reachable_url(transports: list[Transport]) -> None:
    t0, t1, _ = transports
    assert t0.endpoint != t1.endpoint
    assert t0.endpoint.split("://")[0] in ("mem", "ws", "mqtt")
    a, b = await linked(t0, t1)
    assert a.remote
    assert b.remote
    assert "open" in repr(a)


async def test_open_transport_builds_each_kind(mosquitto: Broker) -> None:
    key = PrivateKey.generate()
    built = [
        open_transport("mem://factory-test"),
        open_transport("memory"),
        open_transport("ws://127.0.0.1:0"),
        open_transport("websocket"),
        open_transport(f"mqtt://{mosquitto.host}:{mosquitto.port}", own_address=key.address),
    ]
    assert [type(t).__name__ for t in built] == [
        "MemoryTransport",
        "MemoryTransport",
        "WebSocketTransport",
        "WebSocketTransport",
        "MqttTransport",
    ]
    for transport in built:
        async with transport:
            assert transport.endpoint.startswith(("mem://", "ws://127.0.0.1:", "mqtt://"))
            assert not transport.endpoint.endswith(":0")
    assert built[0].endpoint == "mem://factory-test"
    assert built[4].endpoint.endswith(key.address.checksum)
    with pytest.raises(TransportError, match="unknown transport"):
        open_transport("carrier-pigeon://coop")
