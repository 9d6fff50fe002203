"""`WatcherClient` reading a hostile watcher's answers over real HTTP (an aiohttp server
that answers whatever the test says): every call returns a value or raises a typed
error, `MalformedMessage` for an answer not in the API's shape, the watcher's
refusals for its error shape, `WatcherUnavailable` for a server error. Before, an
answer with a missing or mistyped field raised KeyError or TypeError, and an answer
was read whole whatever its size."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import orjson
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import M2MPayError, MalformedMessage
from m2mpay.node.watch import SignedRegistration, WatchUnavailable
from m2mpay.watcher.core import ChannelParams
from m2mpay.watcher.errors import WatcherRefusal
from m2mpay.watcher_client.client import MAX_ANSWER_BYTES, WatcherClient
from m2mpay.watcher_client.errors import WatcherUnavailable
from m2mpay.watcher_client.towers import HttpWatchtower
from tests.fuzz.hostile import FUZZ, json_nesting_bombs

pytestmark = pytest.mark.timeout(60)

KEY: Final = PrivateKey(bytes(31) + b"\x31")
PEER: Final = Address(b"\x32" * 20)
INFO: Final = {
    "address": "0x" + "33" * 20,
    "chain": "eip155:1337",
    "chain_id": 1337,
    "hub": "0x" + "34" * 20,
    "channels": 0,
    "proofs": 0,
    "registrations": 0,
    "disputes": 0,
    "cursor": -1,
}
Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["0x" + "ab" * 20, "eip155:1", "token"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=25,
)


@contextlib.asynccontextmanager
async def _watcher(answer: Answer, *, info: bool) -> AsyncIterator[WatcherClient]:
    """A client of an HTTP server that answers `answer` (and, if `info`, a good
    /v1/info, which a registration reads first)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        if info and request.path == "/v1/info":
            return web.Response(body=orjson.dumps(INFO), content_type="application/json")
        return await answer(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with WatcherClient(f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        await runner.cleanup()


async def _calls(answer: Answer, *, info: bool = True) -> list[Any]:
    """Every client call against a watcher that answers `answer`."""
    results: list[Any] = []
    async with _watcher(answer, info=info) as client:
        calls = [
            client.info,
            lambda: client.register(ChannelParams(PEER, KEY.address, PEER, 60, 1), KEY),
            lambda: client.update(b"\x01" * 32, KEY.address, "token", 5, b"\x00" * 65),
            lambda: client.channel(b"\x01" * 32),
            client.disputes,
        ]
        for call in calls:
            try:
                results.append(await call())
            except M2MPayError as error:
                results.append(error)
    return results


def _fixed(status: int, body: bytes) -> Answer:
    async def answer(_: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type="application/json")

    return answer


def _typed(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, M2MPayError):
            assert isinstance(result, MalformedMessage | WatcherRefusal | WatcherUnavailable), (
                result
            )


@given(
    status=st.sampled_from([200, 201, 400, 401, 404, 409, 413, 422, 500]),
    body=st.binary(max_size=200),
)
@FUZZ
def test_any_answer_bytes_give_a_value_or_a_typed_error(status: int, body: bytes) -> None:
    _typed(asyncio.run(_calls(_fixed(status, body), info=False)))
    _typed(asyncio.run(_calls(_fixed(status, body))))


@given(value=json_values, status=st.sampled_from([200, 201, 401, 422, 503]))
@FUZZ
def test_any_json_answer_gives_a_value_or_a_typed_error(value: Any, status: int) -> None:
    _typed(asyncio.run(_calls(_fixed(status, orjson.dumps(value)), info=False)))


@pytest.mark.parametrize(
    "bomb", json_nesting_bombs(), ids=["lists", "objects", "open-lists", "open-objects"]
)
def test_nesting_bombs_are_malformed(bomb: bytes) -> None:
    results = asyncio.run(_calls(_fixed(200, bomb)))
    assert all(isinstance(result, MalformedMessage) for result in results[1:]), results


@pytest.mark.parametrize(
    "body",
    [b"[]", b"", {**INFO, "chain_id": "1337"}, {**INFO, "hub": "0x12"}, {**INFO, "cursor": None}],
    ids=["list", "empty", "text-chain-id", "short-hub", "null-cursor"],
)
def test_an_info_answer_of_the_wrong_shape_is_malformed(body: Any) -> None:
    # Before, these raised TypeError, KeyError or InvalidAddress out of `info()`.
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    (info, registration, *_) = asyncio.run(_calls(_fixed(200, raw), info=False))
    assert isinstance(info, MalformedMessage), info
    assert isinstance(registration, MalformedMessage), registration


async def _flood(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    chunk = b" " * (1024 * 1024)
    try:
        for _ in range(MAX_ANSWER_BYTES // len(chunk) + 4):
            await response.write(chunk)
    except ConnectionResetError:
        pass  # the client stopped reading, as it should
    return response


def test_an_answer_past_the_limit_is_refused_while_reading() -> None:
    results = asyncio.run(_calls(_flood))
    assert all(isinstance(result, MalformedMessage) for result in results[1:]), results
    assert all("runs past" in str(result) for result in results[1:]), results


def test_a_watchtower_over_a_garbling_watcher_is_unavailable() -> None:
    # What a feed or a host sees: an outage to retry, not an unexpected exception.
    registration = SignedRegistration(
        PEER, KEY.address, PEER, 60, 1, KEY.address, 1, KEY.sign_digest(bytes(32))
    )

    async def scenario() -> None:
        for info in (False, True):
            async with _watcher(_fixed(201, b"[]"), info=info) as client:
                tower = HttpWatchtower(client)
                with pytest.raises(WatchUnavailable):
                    await tower.identity() if not info else await tower.register(registration)

    asyncio.run(scenario())
