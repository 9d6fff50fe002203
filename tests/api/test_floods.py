"""A node's HTTP server and device bus against clients that flood, stall or never stop:
each is cut off at its bound (time, bytes, connections), the node's memory stays
bounded, and an honest client is served all along."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import websockets

from m2mpay.asgi import BODY_TIMEOUT_S, HEAD_TIMEOUT_S
from m2mpay.bench.daemons import NodeProcess

_GRACE_S = 5.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("floods") / "node")
    node.start()
    yield node
    node.stop()


def _rss_mb(node: NodeProcess) -> float:
    assert node.process is not None
    for line in Path(f"/proc/{node.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _address(node: NodeProcess) -> tuple[str, int]:
    url = urlparse(node.url)
    assert url.hostname is not None
    assert url.port is not None
    return url.hostname, url.port


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True once the server closed the connection (EOF or reset) within `within` s."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def _alive(node: NodeProcess) -> bool:
    assert node.process is not None
    return node.process.poll() is None and httpx.get(f"{node.url}/v1/info").status_code == 200


async def test_slow_and_silent_clients_are_cut_off_at_the_head_deadline(
    daemon: NodeProcess,
) -> None:
    host, port = _address(daemon)
    before = _rss_mb(daemon)
    silent = [await asyncio.open_connection(host, port) for _ in range(150)]
    slow = [await asyncio.open_connection(host, port) for _ in range(150)]
    for _, writer in slow:
        writer.write(b"POST /v1/wallet/faucet HTTP/1.1\r\nHost: x\r\n")

    async def drip() -> None:  # slowloris: one more header byte now and then
        for _ in range(int(HEAD_TIMEOUT_S * 2)):
            await asyncio.sleep(0.5)
            for _, writer in slow:
                with contextlib.suppress(ConnectionError):
                    writer.write(b"X")

    dripping = asyncio.ensure_future(drip())
    async with httpx.AsyncClient(base_url=daemon.url) as honest:
        assert (await honest.get("/v1/info")).status_code == 200  # served meanwhile
    closed = await asyncio.gather(
        *(_closed_by_server(r, HEAD_TIMEOUT_S + _GRACE_S) for r, _ in silent + slow)
    )
    dripping.cancel()
    assert all(closed), f"{closed.count(False)} of {len(closed)} connections still open"
    assert _rss_mb(daemon) - before < 50
    assert _alive(daemon)
    for _, writer in silent + slow:
        writer.close()


async def test_a_body_that_is_too_big_endless_or_too_slow_is_refused(
    daemon: NodeProcess,
) -> None:
    host, port = _address(daemon)
    token = daemon.ready["api_token"]
    head = (
        f"POST /v1/wallet/faucet HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
    )

    async def answer(request: bytes, then: bytes = b"", every: float = 0.0) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        feeding = None
        if then:

            async def feed() -> None:
                with contextlib.suppress(ConnectionError):
                    while True:
                        writer.write(then)
                        await writer.drain()
                        await asyncio.sleep(every)

            feeding = asyncio.ensure_future(feed())
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S + _GRACE_S):
                return await reader.readuntil(b"\r\n\r\n")
        finally:
            if feeding is not None:
                feeding.cancel()
            writer.close()

    declared = await answer(f"{head}Content-Length: 1000000000\r\n\r\n".encode())
    assert declared.startswith(b"HTTP/1.1 413")
    endless = await answer(
        f"{head}Transfer-Encoding: chunked\r\n\r\n".encode(), b"1000\r\n" + b" " * 4096 + b"\r\n"
    )
    assert endless.startswith(b"HTTP/1.1 413")
    stalled = await answer(f"{head}Content-Length: 100\r\n\r\n{{".encode())
    assert stalled.startswith(b"HTTP/1.1 408")
    assert _alive(daemon)


async def test_a_connection_flood_leaves_the_node_serving(daemon: NodeProcess) -> None:
    host, port = _address(daemon)
    before = _rss_mb(daemon)
    opened = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(2_000)), return_exceptions=True
    )
    connections = [c for c in opened if not isinstance(c, BaseException)]
    async with httpx.AsyncClient(base_url=daemon.url, timeout=30) as honest:
        assert (await honest.get("/v1/info")).status_code in (200, 503)
    assert _rss_mb(daemon) - before < 100
    for _, writer in connections:
        writer.close()
    await asyncio.sleep(0.5)
    assert _alive(daemon)


async def test_an_oversized_bus_message_closes_that_connection_only(daemon: NodeProcess) -> None:
    bus = daemon.url.replace("http://", "ws://") + "/v1/devices/ws"
    async with websockets.connect(bus, max_size=None) as device:
        await device.recv()  # the bus's challenge
        await device.send("x" * (512 * 1024))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(device.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # message too big
    assert _alive(daemon)
