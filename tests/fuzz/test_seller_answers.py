"""A buyer's node reading a hostile seller's storefront (`POST /v1/grants` reads the
seller's feed and info over HTTP): whatever the seller answers, the purchase is refused
in the one error shape (404, 409 or 422), never a 500, within a bound on what is read,
and nothing is bought or kept.

The seller is a real HTTP server on loopback answering what each case says; the buyer is
a real node behind its API (in process)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from m2mpay.access.feed_book import FeedBook
from m2mpay.api import examples as ex
from m2mpay.asgi import AsgiServer
from tests.api.conftest import Api, ApiFactory, make_api, simulation  # noqa: F401
from tests.fuzz.hostile import BOMB_DEPTH, FUZZ
from tests.fuzz.test_api_client import json_values
from tests.node.conftest import chain, make_node  # noqa: F401

pytestmark = pytest.mark.timeout(300)

INFO = {**ex.INFO, "peer_endpoint": "ws://127.0.0.1:9"}  # nothing listens there
FEED = ex.FEED  # a feed consistent with INFO: its offer names INFO's address


@dataclass
class Seller:
    """What the hostile seller answers: `feed` for /v1/feeds/…, `info` for /v1/info."""

    feed: bytes = b""
    info: bytes = field(default_factory=lambda: orjson.dumps(INFO))
    status: int = 200
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = self.info if scope["path"] == "/v1/info" else self.feed
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def seller() -> AsyncIterator[Seller]:
    answers = Seller()
    server = AsgiServer(answers, name="hostile seller")
    await server.start()
    answers.url = server.url
    try:
        yield answers
    finally:
        await server.stop()


@pytest.fixture
async def buyer(make_api: ApiFactory, tmp_path: Path) -> Api:  # noqa: F811
    api = await make_api(1)
    api.gateway.feed_book = FeedBook(tmp_path / "feeds.json")
    return api


async def _refused(buyer: Api, seller: Seller) -> dict[str, Any]:
    body = {"seller": seller.url, "feed_id": FEED["feed_id"], "seconds": 120}
    answer = await buyer.http.post("/v1/grants", json=body)
    assert answer.status_code in (404, 409, 422), answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert buyer.gateway.feed_book is not None
    assert buyer.gateway.feed_book.bought() == []
    assert buyer.sessions.sessions() == []
    return error


def _changed(change: Callable[[dict[str, Any]], None]) -> bytes:
    feed = copy.deepcopy(FEED)
    change(feed)
    return orjson.dumps(feed)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(feed: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = feed
        for part in parents:
            node = node[part]
        node[last] = value

    return change


CASES: dict[str, bytes] = {
    "not json": b"<html>oops</html>",
    "a nesting bomb": b"[" * BOMB_DEPTH,
    "an object bomb": b'{"a":' * BOMB_DEPTH,
    "two megabytes": b'{"x": "' + b"y" * 2_000_000 + b'"}',
    "a list": b"[]",
    "an empty object": b"{}",
    "another seller's offer": _changed(_set("offer.seller", ex.CAR)),
    "another id than its offer's": _changed(_set("feed_id", ex.SESSION_ID)),
    "a price that is not the offer's": _changed(_set("price_per_second", "2")),
    "seconds that are not the offer's": _changed(_set("max_seconds", 100)),
    "a device id with a slash": _changed(_set("device_id", "a/b")),
    "a wildcard device": _changed(_set("device_id", "#")),
    "no price": _changed(_set("price_per_second", "0")),
    "a short access key": _changed(_set("access_key", "0x1234")),
    "a broker without a port": _changed(_set("broker", "example.org")),
    "a wrong checksum": _changed(_set("asset", ex.TOKEN.swapcase().replace("0X", "0x"))),
    "an amount past 2**256": _changed(_set("price_per_second", str(2**256))),
    "a negative duration": _changed(_set("min_seconds", -1)),
    "a deliverer-led offer": _changed(_set("offer.leader", "deliverer")),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_hostile_feed_is_refused(buyer: Api, seller: Seller, case: str) -> None:
    seller.feed = CASES[case]
    error = await _refused(buyer, seller)
    assert error["code"] in {"bad_feed", "seller_refused", "peer_unreachable"}, error


async def test_hostile_info_and_statuses_are_refused(buyer: Api, seller: Seller) -> None:
    seller.feed = orjson.dumps(FEED)
    for info in (b"[", b"[" * BOMB_DEPTH, orjson.dumps({**INFO, "address": "0x12"})):
        seller.info = info
        assert (await _refused(buyer, seller))["code"] in {"bad_feed", "seller_refused"}
    seller.info = orjson.dumps(INFO)
    for status, code in ((404, "unknown_feed"), (500, "seller_refused"), (401, "seller_refused")):
        seller.status = status
        assert (await _refused(buyer, seller))["code"] == code
    # The consistent feed itself: refused only because its seller cannot be reached.
    seller.status = 200
    assert (await _refused(buyer, seller))["code"] == "peer_unreachable"


async def test_any_json_as_a_feed_is_refused(buyer: Api, seller: Seller) -> None:
    loop_error: list[BaseException] = []

    @given(value=json_values)
    @settings(FUZZ, max_examples=60)
    def check(value: Any) -> None:
        seller.feed = orjson.dumps(value)
        future = asyncio.run_coroutine_threadsafe(_refused(buyer, seller), loop)
        try:
            future.result(timeout=30)
        except BaseException as exc:
            loop_error.append(exc)
            raise

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(check)
    assert not loop_error
