"""The offers a node publishes, kept in its data dir so a restart publishes them again.

An offer is only a promise while the node runs; what must survive a restart is the
device behind it, or the sessions resumed on it would have nobody to deliver. The
book is a small JSON file, replaced atomically on every change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from m2mpay.channel.plain import from_plain, to_plain
from m2mpay.errors import StoreError
from m2mpay.stream import Offer

__all__ = ["OfferBook"]


class OfferBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[bytes, tuple[Offer, str]] = {}

    def load(self) -> list[tuple[Offer, str]]:
        """The offers and their devices (`device/service`) as last saved."""
        if not self.path.exists():
            return []
        try:
            raw: list[dict[str, Any]] = json.loads(self.path.read_text())
            for entry in raw:
                offer = from_plain(entry["offer"])
                if not isinstance(offer, Offer):
                    raise TypeError("not an offer")
                self._entries[offer.offer_id] = (offer, str(entry["device"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"cannot read the offer book {self.path}: {exc}") from None
        return list(self._entries.values())

    def add(self, offer: Offer, device: str) -> None:
        self._entries[offer.offer_id] = (offer, device)
        self._save()

    def remove(self, offer_id: bytes) -> None:
        if self._entries.pop(offer_id, None) is not None:
            self._save()

    def device_of(self, offer_id: bytes) -> str | None:
        entry = self._entries.get(offer_id)
        return entry[1] if entry is not None else None

    def _save(self) -> None:
        entries = [
            {"offer": to_plain(offer, binary=False), "device": device}
            for offer, device in self._entries.values()
        ]
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as out:
            json.dump(entries, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
