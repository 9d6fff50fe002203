"""The offers a node publishes, kept in its data dir so a restart publishes them again.

An offer is only a promise while the node runs; what must survive a restart is the
device behind it, or the sessions resumed on it would have nobody to deliver, and for
a resale the source it buys from, or its sales would have no supply. The book is a
small JSON file, replaced atomically on every change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m2mpay.errors import StoreError
from m2mpay.plain import from_plain, to_plain
from m2mpay.stream import Offer

__all__ = ["OfferBook", "ResaleTerms", "SavedOffer", "save_json"]


@dataclass(frozen=True, slots=True)
class ResaleTerms:
    """What a resale buys its supply under (see `m2mpay.market.resale.Resale`)."""

    source: Offer
    commission: int
    purchase_budget: int = 0
    purchase_deposit: int = 0
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class SavedOffer:
    offer: Offer
    device: str  # `device/service`
    resale: ResaleTerms | None = None


class OfferBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[bytes, SavedOffer] = {}

    def load(self) -> list[SavedOffer]:
        """The offers, their devices and resale terms as last saved."""
        if not self.path.exists():
            return []
        try:
            raw: list[dict[str, Any]] = json.loads(self.path.read_text())
            for entry in raw:
                offer = _offer(entry["offer"])
                terms = entry.get("resale")
                resale = None
                if terms is not None:
                    resale = ResaleTerms(
                        _offer(terms["source"]),
                        int(terms["commission"]),
                        int(terms["purchase_budget"]),
                        int(terms["purchase_deposit"]),
                        None if terms["endpoint"] is None else str(terms["endpoint"]),
                    )
                self._entries[offer.offer_id] = SavedOffer(offer, str(entry["device"]), resale)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"cannot read the offer book {self.path}: {exc}") from None
        return list(self._entries.values())

    def entries(self) -> list[SavedOffer]:
        """The offers published now, with their devices."""
        return list(self._entries.values())

    def add(self, offer: Offer, device: str, resale: ResaleTerms | None = None) -> None:
        self._entries[offer.offer_id] = SavedOffer(offer, device, resale)
        self._save()

    def remove(self, offer_id: bytes) -> None:
        if self._entries.pop(offer_id, None) is not None:
            self._save()

    def _save(self) -> None:
        save_json(self.path, [_entry(saved) for saved in self._entries.values()])


def save_json(path: Path, value: Any) -> None:
    """Replace the JSON file at `path` with `value`, atomically and durably (a crash
    leaves the old file or the new one, never half of one). The books of the data dir
    (offers, feeds) are kept this way."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as out:
        json.dump(value, out)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def _offer(data: Any) -> Offer:
    offer = from_plain(data)
    if not isinstance(offer, Offer):
        raise TypeError("not an offer")
    return offer


def _entry(saved: SavedOffer) -> dict[str, Any]:
    entry: dict[str, Any] = {"offer": to_plain(saved.offer, binary=False), "device": saved.device}
    if saved.resale is not None:
        terms = saved.resale
        entry["resale"] = {
            "source": to_plain(terms.source, binary=False),
            "commission": str(terms.commission),
            "purchase_budget": str(terms.purchase_budget),
            "purchase_deposit": str(terms.purchase_deposit),
            "endpoint": terms.endpoint,
        }
    return entry
