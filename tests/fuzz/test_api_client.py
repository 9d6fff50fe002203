"""The node API's Python client reading a hostile node's answers: every answer becomes a
value, `MalformedMessage` (not in a form the client reads) or an `ApiRefusal` (the
node's error), in bounded memory. Before, the client parsed with the stdlib parser (via
httpx), which on 100,000 levels of nesting crashed the process with a segmentation
fault once py-evm had raised the recursion limit.

The node is an httpx `MockTransport`, the seam `NodeClient` offers for it: the bodies
under test reach the client's real reading and decoding code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.client import NodeClient
from m2mpay.client.base import MAX_ANSWER_BYTES
from m2mpay.client.events import MAX_EVENT_BYTES
from m2mpay.errors import ApiRefusal, MalformedMessage
from tests.fuzz.hostile import BOMB_DEPTH, FUZZ, TEN_MB, hostile_json, json_nesting_bombs

pytestmark = pytest.mark.timeout(60)

CHANNEL: Final = "0x" + "ab" * 32

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["0x" + "ab" * 20, CHANNEL, "100", "open"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=25,
)


def json_values_of(shape: dict[str, Any]) -> dict[str, Any]:
    """Each of `shape`'s keys with its own value or any JSON value: answers that are
    nearly right, which reach the decoding of each field."""
    return {key: st.just(value) | json_values for key, value in shape.items()}


def _node(answer: Callable[[httpx.Request], httpx.Response]) -> NodeClient:
    return NodeClient("http://node.test", "token", transport=httpx.MockTransport(answer))


def _read(answer: Callable[[httpx.Request], httpx.Response]) -> Any:
    """What `channels()` and `channel()` make of the node's answers."""

    async def ask() -> Any:
        async with _node(answer) as client:
            results: list[Any] = []
            for call in (client.channels, lambda: client.channel(CHANNEL)):
                try:
                    results.append(await call())
                except (MalformedMessage, ApiRefusal) as refusal:
                    results.append(refusal)
            return results

    return asyncio.run(ask())


def _read_access(answer: Callable[[httpx.Request], httpx.Response]) -> list[Any]:
    """What the paid-data calls (feeds, grants, buying) make of the node's answers."""

    async def ask() -> list[Any]:
        async with _node(answer) as client:
            results: list[Any] = []
            for call in (
                client.feeds,
                lambda: client.feed(CHANNEL),
                client.grants,
                lambda: client.grant(CHANNEL),
                lambda: client.buy_grant("http://seller.test", CHANNEL, seconds=60),
                lambda: client.publish_feed("plug", price_per_hour=3600),
            ):
                try:
                    results.append(await call())
                except (MalformedMessage, ApiRefusal) as refusal:
                    results.append(refusal)
            return results

    return asyncio.run(ask())


Reader = Callable[[Callable[[httpx.Request], httpx.Response]], list[Any]]


def values_or_refusals(read: Reader, status: int, body: bytes) -> None:
    """Every call `read` makes, answered `status` with `body`, gives a value; an error
    status, the typed refusal."""
    for result in read(lambda _: httpx.Response(status, content=body)):
        assert result is not None
        if status >= 400:
            assert isinstance(result, ApiRefusal)


@given(value=json_values, status=st.sampled_from([200, 201, 404, 409, 422, 503]))
@FUZZ
def test_any_answer_to_the_paid_data_calls_gives_a_value_or_a_typed_error(
    value: Any, status: int
) -> None:
    values_or_refusals(_read_access, status, orjson.dumps(value))


@pytest.mark.parametrize(
    "bomb", json_nesting_bombs(), ids=["lists", "objects", "open-lists", "open-objects"]
)
def test_nesting_bombs_in_a_paid_data_answer_are_malformed(bomb: bytes) -> None:
    results = _read_access(lambda _: httpx.Response(200, content=bomb))
    assert all(isinstance(result, MalformedMessage) for result in results), results


def _read_streams(answer: Callable[[httpx.Request], httpx.Response]) -> list[Any]:
    """What the provenance stream calls make of the node's answers (the file, QR code and
    page are bytes the caller verifies or shows: only their size and status are read)."""

    async def ask() -> list[Any]:
        async with _node(answer) as client:
            results: list[Any] = []
            for call in (
                client.streams,
                lambda: client.stream(CHANNEL),
                lambda: client.stream_messages(CHANNEL),
                lambda: client.verify_stream(CHANNEL),
                lambda: client.stream_file(CHANNEL),
                lambda: client.stream_qr(CHANNEL),
                lambda: client.session_qr_page(CHANNEL),
            ):
                try:
                    results.append(await call())
                except (MalformedMessage, ApiRefusal) as refusal:
                    results.append(refusal)
            return results

    return asyncio.run(ask())


STREAM_ANSWER: Final = {
    "stream_id": CHANNEL,
    "author": "0x" + "ab" * 20,
    "purpose": "session",
    "access": "restricted",
    "created_ms": 1,
    "links": [],
    "count": 0,
    "head": None,
    "head_ms": None,
    "anchored_to": None,
    "session": None,
}


NEAR_STREAM: Final = st.fixed_dictionaries({}, optional=json_values_of(STREAM_ANSWER))


@given(
    value=json_values | NEAR_STREAM | NEAR_STREAM.map(lambda near: {"streams": [near]}),
    status=st.sampled_from([200, 404, 409, 422, 503]),
)
@FUZZ
def test_any_answer_to_the_stream_calls_gives_a_value_or_a_typed_error(
    value: Any, status: int
) -> None:
    values_or_refusals(_read_streams, status, orjson.dumps(value))


@pytest.mark.parametrize(
    "bomb", json_nesting_bombs(), ids=["lists", "objects", "open-lists", "open-objects"]
)
def test_nesting_bombs_in_a_stream_answer_are_malformed_or_bytes(bomb: bytes) -> None:
    *decoded, file, qr, page = _read_streams(lambda _: httpx.Response(200, content=bomb))
    assert all(isinstance(result, MalformedMessage) for result in decoded), decoded
    assert file == qr == bomb  # not parsed here: the caller verifies a file's bytes
    assert isinstance(page, str)


@given(
    status=st.sampled_from([200, 201, 400, 401, 404, 409, 422, 500, 502]),
    body=st.binary(max_size=300),
)
@FUZZ
def test_any_answer_bytes_give_a_value_or_a_typed_error(status: int, body: bytes) -> None:
    for result in _read(lambda _: httpx.Response(status, content=body)):
        if status >= 400:
            assert isinstance(result, ApiRefusal)
            assert result.status == status


@given(value=json_values, status=st.sampled_from([200, 404, 422, 503]))
@FUZZ
def test_any_json_answer_gives_a_value_or_a_typed_error(value: Any, status: int) -> None:
    body = orjson.dumps(value)
    for result in _read(lambda _: httpx.Response(status, content=body)):
        assert result is not None


@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.parametrize(
    "bomb", json_nesting_bombs(), ids=["lists", "objects", "open-lists", "open-objects"]
)
def test_nesting_bombs_in_an_answer_are_malformed(status: int, bomb: bytes) -> None:
    results = _read(lambda _: httpx.Response(status, content=bomb))
    expected = MalformedMessage if status == 200 else ApiRefusal
    assert all(isinstance(result, expected) for result in results), results


def test_hostile_json_answers_give_a_value_or_a_typed_error() -> None:
    valid = orjson.dumps({"channels": []})
    for body in hostile_json(valid):
        results = _read(lambda _, body=body: httpx.Response(200, content=body))  # type: ignore[misc]
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            assert all(isinstance(result, MalformedMessage) for result in results), results
        # Valid JSON with an unknown field is read: the client ignores what it does not know.


async def _endless(chunk: bytes) -> AsyncIterator[bytes]:
    while True:
        yield chunk


def test_an_answer_past_the_limit_is_refused_while_reading() -> None:
    declared = _read(
        lambda _: httpx.Response(
            200, headers={"content-length": str(MAX_ANSWER_BYTES + 1)}, content=b"{}"
        )
    )
    assert all("above the limit" in str(result) for result in declared), declared
    # No length given, and no end: the client stops reading at the limit.
    chunk = b" " * (4 * 1024 * 1024)
    flood = _read(lambda _: httpx.Response(200, content=_endless(chunk)))
    assert all("runs past" in str(result) for result in flood), flood


def test_an_error_answer_of_ten_megabytes_keeps_only_a_short_message() -> None:
    (result, _) = _read(lambda _: httpx.Response(502, content=b"x" * TEN_MB))
    assert isinstance(result, ApiRefusal)
    assert result.code == "http_502"
    assert len(result.message) <= 200


# -- the event stream ------------------------------------------------------------------------


def _events(body: bytes) -> list[Any]:
    async def listen() -> list[Any]:
        client = _node(lambda _: httpx.Response(200, content=body))
        results: list[Any] = []
        async with client, client.events() as events:
            try:
                async for event in events:
                    results.append(event)
            except MalformedMessage as refusal:
                results.append(refusal)
        return results

    return asyncio.run(listen())


def test_events_that_are_not_json_objects_or_too_large_are_malformed() -> None:
    good = b'event: channel\ndata: {"t": "ev.opened"}\n\n'
    assert _events(good)[0].type == "ev.opened"
    for data in [b"[" * BOMB_DEPTH, b"[]", b"NaN", b'{"t": 1' + b"0" * 5000 + b"}"]:
        (result,) = _events(b"event: channel\ndata: " + data + b"\n\n")
        assert isinstance(result, MalformedMessage), result
    line = b"data: " + b"x" * 1000 + b"\n"
    endless = line * (MAX_EVENT_BYTES // 1000 + 2)
    (result,) = _events(good[:0] + endless + b"\n")
    assert isinstance(result, MalformedMessage)
    assert "above" in str(result)
