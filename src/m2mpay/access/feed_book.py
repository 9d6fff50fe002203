"""The feeds a node sells and the feeds it bought, kept in its data dir (`feeds.json`).

A feed's offer must be the same after a restart, or the sessions resumed on it would
find no device (`FeedSeller.publish(feed, offer)` takes it back). What a node bought
is kept so that it can list and extend its purchases: the seller's feed, where its
API is, the session and the client's username. A password is never written here:
the buyer's owner got it once, in the answer to the purchase, and the seller's broker
keeps only its hash.

The file is replaced atomically on every change, as the offer book is
(`m2mpay.market.offer_book.save_json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from m2mpay.access.feeds import Feed
from m2mpay.access.selling import SoldFeed
from m2mpay.errors import M2MPayError, StoreError
from m2mpay.market.offer_book import save_json
from m2mpay.plain import from_plain, to_plain
from m2mpay.stream import Offer

__all__ = ["BoughtFeed", "FeedBook"]


@dataclass(frozen=True, slots=True)
class BoughtFeed:
    """A purchase of this node's: `seconds` bought in all (extensions included)."""

    session_id: bytes
    feed: Feed
    offer: Offer
    seller_url: str
    username: str
    seconds: int


def _typed(data: Any, cls: type[Any]) -> Any:
    value = from_plain(data)
    if not isinstance(value, cls):
        raise TypeError(f"not a {cls.__name__}")
    return value


class FeedBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._sold: dict[bytes, SoldFeed] = {}
        self._bought: dict[bytes, BoughtFeed] = {}

    def load(self) -> list[SoldFeed]:
        """Read the file; the feeds sold, to publish again (the purchases: `bought`)."""
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text())
            for entry in raw["sold"]:
                sold = SoldFeed(_typed(entry["feed"], Feed), _typed(entry["offer"], Offer))
                self._sold[sold.offer.offer_id] = sold
            for entry in raw["bought"]:
                bought = BoughtFeed(
                    bytes.fromhex(entry["session_id"]),
                    _typed(entry["feed"], Feed),
                    _typed(entry["offer"], Offer),
                    str(entry["seller_url"]),
                    str(entry["username"]),
                    int(entry["seconds"]),
                )
                self._bought[bought.session_id] = bought
        except (OSError, ValueError, KeyError, TypeError, M2MPayError) as exc:
            raise StoreError(f"cannot read the feed book {self.path}: {exc}") from None
        return list(self._sold.values())

    def sold(self) -> list[SoldFeed]:
        return list(self._sold.values())

    def add_sold(self, sold: SoldFeed) -> None:
        self._sold[sold.offer.offer_id] = sold
        self._save()

    def remove_sold(self, offer_id: bytes) -> None:
        if self._sold.pop(offer_id, None) is not None:
            self._save()

    def bought(self) -> list[BoughtFeed]:
        return list(self._bought.values())

    def purchase(self, session_id: bytes) -> BoughtFeed | None:
        return self._bought.get(session_id)

    def add_bought(self, bought: BoughtFeed) -> None:
        self._bought[bought.session_id] = bought
        self._save()

    def extend(self, session_id: bytes, seconds: int) -> BoughtFeed:
        """The purchase with `seconds` in all."""
        bought = self._bought[session_id] = replace(self._bought[session_id], seconds=seconds)
        self._save()
        return bought

    def _save(self) -> None:
        save_json(
            self.path,
            {
                "sold": [
                    {
                        "feed": to_plain(s.feed, binary=False),
                        "offer": to_plain(s.offer, binary=False),
                    }
                    for s in self._sold.values()
                ],
                "bought": [
                    {
                        "session_id": b.session_id.hex(),
                        "feed": to_plain(b.feed, binary=False),
                        "offer": to_plain(b.offer, binary=False),
                        "seller_url": b.seller_url,
                        "username": b.username,
                        "seconds": b.seconds,
                    }
                    for b in self._bought.values()
                ],
            },
        )
