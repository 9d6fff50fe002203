"""Feeds: a device's live data sold by the second, its average free to all.

A feed is an offer of kind data on one device's topics: the live topic
``m2m/<device>/live`` is paid, the free topic ``m2m/<device>/1m`` (its 1-minute moving
average) is readable by anyone.

Prices are whole smallest units **per second**, so no amount is ever fractional: an
owner asking ``P`` an hour gets a per-second price of ``ceil(P / 3600)`` (`new_feed`),
and the hourly price the feed shows is ``3600 ×`` that, never below what was asked.
N seconds cost exactly ``N × price_per_second``; an amount buys ``amount /
price_per_second`` seconds and must be a whole number of them, within the feed's
minimum and maximum duration, or it is refused (the seller keeps no remainder and
grants no access it was not paid for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NamedTuple

from m2mpay.crypto import UINT256_MAX, Address
from m2mpay.errors import AccessError
from m2mpay.plain import Bytes32, Text, Uint64, Uint256, plain_type

__all__ = [
    "FREE_STREAM",
    "LIVE_STREAM",
    "SECONDS_PER_HOUR",
    "TOPIC_ROOT",
    "Feed",
    "FeedTopics",
    "check_device_id",
    "cost",
    "feed_problem",
    "feed_topics",
    "new_feed",
    "per_second",
    "seconds_for",
]

TOPIC_ROOT: Final = "m2m"
LIVE_STREAM: Final = "live"
FREE_STREAM: Final = "1m"
SECONDS_PER_HOUR: Final = 3600

# A topic level of its own: no `/` (a level separator), `+` or `#` (wildcards), `$`
# (the broker's own topics), no spaces or control characters; bounded.
_DEVICE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A host name, an IPv4 address or a bracketed IPv6 one, and a port.
_BROKER: Final = re.compile(
    r"(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):(?P<port>[0-9]{1,5})"
)


class FeedTopics(NamedTuple):
    live: str  # paid
    free: str  # the 1-minute moving average, readable by anyone


def check_device_id(device_id: str) -> str:
    """`device_id` if it can be a topic level, else `AccessError("bad_device_id")`."""
    if not isinstance(device_id, str) or not _DEVICE_ID.fullmatch(device_id):
        raise AccessError(
            "bad_device_id",
            "a device id is 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter "
            "or digit (no '/', '+', '#', '$')",
        )
    return device_id


def feed_topics(device_id: str) -> FeedTopics:
    """The live and free topics of a device's feed."""
    base = f"{TOPIC_ROOT}/{check_device_id(device_id)}"
    return FeedTopics(f"{base}/{LIVE_STREAM}", f"{base}/{FREE_STREAM}")


def per_second(price_per_hour: int) -> int:
    """The per-second price of an hourly price: rounded up, so the seller never gets less."""
    return -(-price_per_hour // SECONDS_PER_HOUR)


@plain_type("access.feed")
@dataclass(frozen=True, slots=True)
class Feed:
    """A device's live data for sale; see the module docstring for the prices.

    `access_key` is the seller's X25519 public key that buyers seal their MQTT
    credentials to; `broker` is the ``host:port`` buyers connect to.
    """

    device_id: Text
    price_per_second: Uint256
    min_seconds: Uint64
    max_seconds: Uint64
    asset: Address
    access_key: Bytes32
    broker: Text

    @property
    def live_topic(self) -> str:
        return feed_topics(self.device_id).live

    @property
    def free_topic(self) -> str:
        return feed_topics(self.device_id).free

    @property
    def price_per_hour(self) -> int:
        """What an hour costs: exactly 3600 seconds' worth."""
        return SECONDS_PER_HOUR * self.price_per_second


def feed_problem(feed: Feed) -> str | None:
    """Why `feed` cannot be offered (or bought from), or None."""
    if not isinstance(feed.device_id, str) or not _DEVICE_ID.fullmatch(feed.device_id):
        return "the device id cannot be a topic level"
    if feed.price_per_second <= 0:
        return "the price must be positive"
    if not 1 <= feed.min_seconds <= feed.max_seconds:
        return "the durations must be at least a second, the minimum not above the maximum"
    if feed.price_per_second * feed.max_seconds > UINT256_MAX:
        return "the longest purchase must cost less than 2**256"
    if len(feed.access_key) != 32:
        return "the access key is 32 bytes"
    match = _BROKER.fullmatch(feed.broker)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        return "the broker is host:port"
    return None


def new_feed(
    device_id: str,
    *,
    price_per_hour: int,
    asset: Address,
    access_key: bytes,
    broker: str,
    min_seconds: int = 60,
    max_seconds: int = 24 * SECONDS_PER_HOUR,
) -> Feed:
    """A feed at `price_per_hour` (rounded up to whole units a second); `AccessError`
    ("bad_device_id" or "bad_feed") says what is wrong with it."""
    check_device_id(device_id)
    if price_per_hour <= 0:
        raise AccessError("bad_feed", "the price must be positive")
    feed = Feed(
        device_id,
        per_second(price_per_hour),
        min_seconds,
        max_seconds,
        asset,
        access_key,
        broker,
    )
    problem = feed_problem(feed)
    if problem is not None:
        raise AccessError("bad_feed", problem)
    return feed


def _check_duration(feed: Feed, seconds: int) -> None:
    if seconds < feed.min_seconds:
        raise AccessError(
            "below_min_seconds", f"this feed sells at least {feed.min_seconds} s, not {seconds} s"
        )
    if seconds > feed.max_seconds:
        raise AccessError(
            "above_max_seconds", f"this feed sells at most {feed.max_seconds} s, not {seconds} s"
        )


def cost(feed: Feed, seconds: int) -> int:
    """What `seconds` of the live topic cost, in the asset's smallest unit."""
    _check_duration(feed, seconds)
    return seconds * feed.price_per_second


def seconds_for(feed: Feed, amount: int) -> int:
    """The seconds `amount` pays for: whole seconds within the feed's bounds, or
    `AccessError` (`below_one_second`, `not_whole_seconds`, `below_min_seconds`,
    `above_max_seconds`), so that no payment is taken for access that is not granted."""
    price = feed.price_per_second
    if amount < price:
        raise AccessError(
            "below_one_second", f"{amount} is below the price of one second ({price})"
        )
    seconds, rest = divmod(amount, price)
    if rest:
        raise AccessError(
            "not_whole_seconds",
            f"{amount} is not a whole number of seconds at {price} a second "
            f"({seconds * price} or {(seconds + 1) * price} are)",
        )
    _check_duration(feed, seconds)
    return seconds
