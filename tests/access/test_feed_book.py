"""The feed book (`feeds.json`): what a node sells and bought survives a restart, as
written, with no password in it; a file that cannot be read is a `StoreError`."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from m2mpay.access.feed_book import BoughtFeed, FeedBook
from m2mpay.access.feeds import new_feed
from m2mpay.access.selling import SoldFeed, feed_offer
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import StoreError

SELLER = PrivateKey.generate().address
TOKEN = Address("0x" + "22" * 20)


def _sold(device: str) -> SoldFeed:
    feed = new_feed(
        device,
        price_per_hour=3600,
        asset=TOKEN,
        access_key=secrets.token_bytes(32),
        broker="127.0.0.1:1883",
    )
    return SoldFeed(feed, feed_offer(feed, SELLER))


def test_sold_and_bought_feeds_are_read_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "feeds.json"
    book = FeedBook(path)
    assert book.load() == []
    kitchen, hall = _sold("plug-kitchen"), _sold("plug-hall")
    book.add_sold(kitchen)
    book.add_sold(hall)
    book.remove_sold(hall.offer.offer_id)
    bought = BoughtFeed(
        secrets.token_bytes(32), kitchen.feed, kitchen.offer, "http://seller:8402", "reader", 60
    )
    book.add_bought(bought)
    book.extend(bought.session_id, 90)

    again = FeedBook(path)
    assert again.load() == [kitchen]
    [read] = again.bought()
    assert read.seconds == 90
    assert (read.session_id, read.feed, read.offer, read.username) == (
        bought.session_id,
        kitchen.feed,
        kitchen.offer,
        "reader",
    )
    assert again.purchase(bought.session_id) == read
    assert "password" not in path.read_text()


@pytest.mark.parametrize("text", ["", "{", "[]", '{"sold": [{"feed": 1}], "bought": []}'])
def test_a_book_that_cannot_be_read_is_a_store_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "feeds.json"
    path.write_text(text)
    with pytest.raises(StoreError, match="feed book"):
        FeedBook(path).load()
