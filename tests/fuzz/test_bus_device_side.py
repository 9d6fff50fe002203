"""The device's side of the bus: what the bus sends is parsed as strictly as what a
device sends (`parse_bus_message`), and a simulated device on a hostile bus logs and
skips what it cannot read instead of crashing. Before, a device parsed with the stdlib
parser, which recursed in C until the stack broke (a segmentation fault) on 100,000
levels of nesting once py-evm had raised the recursion limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve

from m2mpay.bus.messages import (
    MAX_MESSAGE_BYTES,
    BadMessage,
    BusMessage,
    parse_bus_message,
)
from m2mpay.crypto import PrivateKey
from m2mpay.devices.bus_client import BusClient
from tests.fuzz.hostile import FUZZ, json_nesting_bombs

pytestmark = pytest.mark.timeout(60)

BUS_KEY: Final = PrivateKey(bytes(31) + b"\x21")
DEVICE_KEY: Final = PrivateKey(bytes(31) + b"\x22")
CHALLENGE: Final = {
    "type": "challenge",
    "protocol": "m2mpay-device/1",
    "server": BUS_KEY.address.checksum,
    "challenge": "0x" + "11" * 32,
    "expires_ms": 1,
}
HOSTILE: Final[list[bytes]] = [
    *(bomb[: MAX_MESSAGE_BYTES - 1] for bomb in json_nesting_bombs()),
    *json_nesting_bombs(),  # past the size limit too: 100,000 levels
    b'{"type":"welcome","device":"0x'
    + b"ab" * 20
    + b'","telemetry_seq":NaN,"pending":0,"services":[]}',
    b'{"type":"telemetry_ack","seq":' + b"9" * 5000 + b"}",
    b'{"type":"command","id":1}',
    b'{"type":"error","code":"x","message":"\xff"}',
    b"[]",
    b"null",
    b'{"type":"steal"}',
]


@given(raw=st.binary(max_size=400) | st.text(max_size=200))
@FUZZ
def test_any_bytes_from_the_bus_parse_or_raise_bad_message(raw: bytes | str) -> None:
    try:
        message = parse_bus_message(raw)
    except BadMessage:
        return
    assert isinstance(message, BusMessage)


@pytest.mark.parametrize("raw", HOSTILE, ids=lambda raw: raw[:12].decode(errors="replace"))
def test_hostile_bus_messages_raise_bad_message(raw: bytes) -> None:
    with pytest.raises(BadMessage):
        parse_bus_message(raw)


def test_a_bus_message_past_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(BadMessage, match="at most"):
        parse_bus_message(b"[" * 100_000)


class _Device(BusClient):
    def services(self) -> list[dict[str, Any]]:
        return [{"name": "light", "unit": "s", "price": "1", "asset": BUS_KEY.address.checksum}]

    async def execute(self, command: dict[str, Any]) -> str | None:
        return None

    def meters(self) -> list[dict[str, Any]]:
        return []


@pytest.fixture
async def hostile_bus() -> AsyncIterator[tuple[str, list[Any]]]:
    """A bus that sends a challenge, every hostile message, then `registered`."""
    heard: list[Any] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.send(orjson.dumps(CHALLENGE).decode())
        heard.append(orjson.loads(await connection.recv()))  # the login
        for raw in HOSTILE:
            await connection.send(raw.decode(errors="replace"))
        await connection.send(orjson.dumps({"type": "registered", "services": ["light"]}).decode())
        async for message in connection:
            heard.append(orjson.loads(message))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", heard


async def test_a_device_on_a_hostile_bus_skips_what_it_cannot_read(
    hostile_bus: tuple[str, list[Any]],
) -> None:
    url, heard = hostile_bus
    device = _Device(url, DEVICE_KEY, name="lamp", server=BUS_KEY.address)
    async with device:
        await asyncio.wait_for(device.connected.wait(), 10)
    assert heard[0]["type"] == "login"
    assert device.logins == 0  # no hostile `welcome` got through
