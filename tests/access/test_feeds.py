"""Feeds: topics from a device id that cannot escape its own level, prices in whole units
a second, and durations within the feed's bounds, each refusal with its own code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from m2mpay.access.feeds import (
    SECONDS_PER_HOUR,
    Feed,
    check_device_id,
    cost,
    feed_problem,
    feed_topics,
    new_feed,
    per_second,
    seconds_for,
)
from m2mpay.crypto import UINT256_MAX, Address
from m2mpay.errors import AccessError, MalformedMessage
from m2mpay.plain import from_plain, to_plain

ASSET: Final = Address(b"\x33" * 20)
KEY: Final = b"\x44" * 32
BROKER: Final = "127.0.0.1:1883"

T = TypeVar("T")


def _feed(
    price_per_second: int = 1, min_seconds: int = 1, max_seconds: int = SECONDS_PER_HOUR
) -> Feed:
    return Feed("plug-1", price_per_second, min_seconds, max_seconds, ASSET, KEY, BROKER)


def _outcome(call: Callable[..., T], *args: object) -> T | str:
    """What `call` returns, or the code of the `AccessError` it raises."""
    try:
        return call(*args)
    except AccessError as error:
        return error.code


def _code(call: object, *args: object) -> str:
    assert callable(call)
    with pytest.raises(AccessError) as caught:
        call(*args)
    return caught.value.code


# -- topics ------------------------------------------------------------------------------


def test_a_feed_has_a_paid_live_topic_and_a_free_average_topic() -> None:
    topics = feed_topics("plug-1")
    assert topics.live == "m2m/plug-1/live"
    assert topics.free == "m2m/plug-1/1m"
    feed = _feed()
    assert (feed.live_topic, feed.free_topic) == topics


def test_a_device_address_is_a_device_id() -> None:
    address = Address(b"\xab" * 20).checksum
    assert feed_topics(address).live == f"m2m/{address}/live"


@pytest.mark.parametrize(
    "device_id",
    ["", "a/b", "+", "#", "plug#", "plug+1", "$SYS", "$CONTROL", "plug 1", "plug\x00",
     "x" * 65, "-plug", ".", "..", "pläg", "plug\n", "a/../b"],
)  # fmt: skip
def test_a_device_id_that_is_not_one_topic_level_is_refused(device_id: str) -> None:
    assert _code(feed_topics, device_id) == "bad_device_id"
    assert _code(check_device_id, device_id) == "bad_device_id"


@given(device_id=st.text(max_size=80))
def test_any_accepted_device_id_gives_topics_of_exactly_three_plain_levels(device_id: str) -> None:
    topics = _outcome(feed_topics, device_id)
    if isinstance(topics, str):
        assert topics == "bad_device_id"
        return
    for topic in topics:
        assert topic.split("/")[:2] == ["m2m", device_id]
        assert topic.count("/") == 2
        assert not set(topic) & set("+#$ \x00")


# -- prices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "second", "shown"),
    [(3600, 1, 3600), (500, 1, 3600), (3601, 2, 7200), (7200, 2, 7200), (1, 1, 3600)],
)
def test_an_hourly_price_becomes_whole_units_a_second_rounded_up(
    asked: int, second: int, shown: int
) -> None:
    feed = new_feed("plug-1", price_per_hour=asked, asset=ASSET, access_key=KEY, broker=BROKER)
    assert feed.price_per_second == per_second(asked) == second
    assert feed.price_per_hour == shown >= asked


def test_a_feed_round_trips_through_its_plain_form() -> None:
    feed = _feed(7, 60, 86_400)
    for binary in (True, False):
        assert from_plain(to_plain(feed, binary=binary)) == feed
    text = to_plain(feed, binary=False)
    assert text["price_per_second"] == "7"  # amounts as decimal strings
    assert text["access_key"] == "0x" + KEY.hex()


def test_a_plain_feed_with_a_short_access_key_is_malformed() -> None:
    plain = to_plain(_feed(), binary=False)
    plain["access_key"] = "0x" + "44" * 31
    with pytest.raises(MalformedMessage):
        from_plain(plain)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"device_id": "a/b"}, "device id"),
        ({"price_per_second": 0}, "price"),
        ({"min_seconds": 0}, "durations"),
        ({"min_seconds": 61, "max_seconds": 60}, "durations"),
        ({"price_per_second": 2**250, "max_seconds": 2**10}, "2**256"),
        ({"access_key": b"\x01" * 31}, "access key"),
        ({"broker": "127.0.0.1"}, "host:port"),
        ({"broker": "127.0.0.1:0"}, "host:port"),
        ({"broker": "127.0.0.1:65536"}, "host:port"),
        ({"broker": "mqtt://host:1883"}, "host:port"),
        ({"broker": "ho st:1883"}, "host:port"),
    ],
)
def test_a_feed_that_cannot_be_offered_says_why(change: dict[str, object], problem: str) -> None:
    values: dict[str, object] = {
        "device_id": "plug-1",
        "price_per_second": 1,
        "min_seconds": 1,
        "max_seconds": 3600,
        "asset": ASSET,
        "access_key": KEY,
        "broker": BROKER,
    }
    feed = Feed(**{**values, **change})  # type: ignore[arg-type]
    found = feed_problem(feed)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize("broker", ["localhost:1883", "127.0.0.1:65535", "[::1]:1883"])
def test_a_broker_is_a_host_and_a_port(broker: str) -> None:
    feed = Feed("plug-1", 1, 1, 60, ASSET, KEY, broker)
    assert feed_problem(feed) is None


def test_new_feed_refuses_what_cannot_be_offered_with_codes() -> None:
    def made(device_id: str = "plug-1", price: int = 3600, **more: int) -> Feed:
        return new_feed(
            device_id, price_per_hour=price, asset=ASSET, access_key=KEY, broker=BROKER, **more
        )

    assert _code(made, "a/b") == "bad_device_id"
    assert _code(made, "plug-1", 0) == "bad_feed"
    assert _code(made, "plug-1", -3600) == "bad_feed"
    with pytest.raises(AccessError) as caught:
        made(min_seconds=100, max_seconds=10)
    assert caught.value.code == "bad_feed"
    assert made().min_seconds == 60  # a minute at least, by default


# -- durations and amounts ---------------------------------------------------------------


def test_cost_is_seconds_times_the_price_of_a_second() -> None:
    feed = _feed(3, 10, 100)
    assert cost(feed, 10) == 30
    assert cost(feed, 100) == 300
    assert seconds_for(feed, 30) == 10


def test_durations_outside_the_feed_are_refused_with_codes() -> None:
    feed = _feed(3, 10, 100)
    assert _code(cost, feed, 9) == "below_min_seconds"
    assert _code(cost, feed, 0) == "below_min_seconds"
    assert _code(cost, feed, 101) == "above_max_seconds"
    assert _code(seconds_for, feed, 27) == "below_min_seconds"
    assert _code(seconds_for, feed, 303) == "above_max_seconds"


def test_amounts_that_are_not_whole_seconds_are_refused_with_codes() -> None:
    feed = _feed(3, 1, 100)
    assert _code(seconds_for, feed, 0) == "below_one_second"
    assert _code(seconds_for, feed, 2) == "below_one_second"
    assert _code(seconds_for, feed, 31) == "not_whole_seconds"
    with pytest.raises(AccessError) as caught:
        seconds_for(feed, 31)
    assert "30 or 33" in caught.value.message  # what would have been whole


feeds = st.builds(
    _feed,
    price_per_second=st.integers(1, 10**24),
    min_seconds=st.integers(1, 10**4),
    max_seconds=st.integers(1, 10**7),
).filter(lambda feed: feed.min_seconds <= feed.max_seconds)


@given(feed=feeds, data=st.data())
def test_cost_and_seconds_for_agree_within_the_bounds(feed: Feed, data: st.DataObject) -> None:
    seconds = data.draw(st.integers(feed.min_seconds, feed.max_seconds))
    amount = cost(feed, seconds)
    assert type(amount) is int
    assert amount % feed.price_per_second == 0
    assert seconds_for(feed, amount) == seconds
    assert cost(feed, seconds_for(feed, amount)) == amount


@given(feed=feeds, amount=st.integers(0, 2**128))
def test_any_amount_buys_whole_seconds_in_bounds_or_is_refused(feed: Feed, amount: int) -> None:
    seconds = _outcome(seconds_for, feed, amount)
    if isinstance(seconds, str):
        assert seconds in {
            "below_one_second",
            "not_whole_seconds",
            "below_min_seconds",
            "above_max_seconds",
        }
        return
    assert type(seconds) is int
    assert feed.min_seconds <= seconds <= feed.max_seconds
    assert cost(feed, seconds) == amount  # nothing kept, nothing given away


@given(feed=feeds, seconds=st.integers(-(10**8), 10**8))
def test_cost_is_only_ever_for_seconds_in_bounds(feed: Feed, seconds: int) -> None:
    assume(not feed.min_seconds <= seconds <= feed.max_seconds)
    with pytest.raises(AccessError) as caught:
        cost(feed, seconds)
    assert caught.value.code in {"below_min_seconds", "above_max_seconds"}


@given(asked=st.integers(1, 2**200))
def test_the_shown_hourly_price_is_never_below_the_asked_one_by_a_second_or_more(
    asked: int,
) -> None:
    second = per_second(asked)
    assert asked <= SECONDS_PER_HOUR * second < asked + SECONDS_PER_HOUR


def test_the_price_of_the_longest_purchase_fits_in_256_bits() -> None:
    feed = _feed(UINT256_MAX // 100, 1, 100)
    assert feed_problem(feed) is None
    assert cost(feed, 100) <= UINT256_MAX
