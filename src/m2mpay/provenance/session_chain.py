"""What a buyer does with the session streams its sellers gave it: keep them, and follow
a chain of them back to the source.

`BoughtStreams` is a buyer's book of the `StreamGiven` answers, by session, a small JSON
file; the keys in it stay wrapped for the buyer's reader key, so nothing readable is at
rest. `check_value_chain` walks the streams of one purchase (its seller's first, then
the upstream ones the seller linked, as `open_shares` opened them) with their files: each
verifies, records a session paid to its author, ends with the receipt both parties
signed, and was bought by the author of the stream below it (a reseller buys what it
sells). The first thing wrong is named; only a chain with none is a chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m2mpay.errors import M2MPayError, StoreError
from m2mpay.plain import from_plain, to_plain
from m2mpay.provenance.session_streams import KnownStream, StreamGiven
from m2mpay.provenance.stream_file import StreamFile
from m2mpay.provenance.stream_records import ReceiptRecord, SessionRecord
from m2mpay.provenance.stream_verify import Verified, verify

__all__ = ["BoughtStreams", "Hop", "check_value_chain"]

Save = Callable[[Path, Any], None]


class BoughtStreams:
    """See the module docstring. `save` writes the file atomically (the data dir's books
    share one way, `market.offer_book.save_json`); without it the book is read-only."""

    def __init__(self, path: Path, save: Save | None = None) -> None:
        self.path = path
        self._save = save
        self._given: dict[bytes, StreamGiven] = {}

    def load(self) -> BoughtStreams:
        if not self.path.exists():
            return self
        try:
            entries = json.loads(self.path.read_text())
            if not isinstance(entries, list):
                raise TypeError("not a list")
            for entry in entries:
                given = from_plain(entry)
                if not isinstance(given, StreamGiven):
                    raise TypeError("not a stream given")
                self._given[given.session_id] = given
        except (OSError, ValueError, TypeError, M2MPayError) as exc:
            raise StoreError(f"cannot read the bought streams {self.path}: {exc}") from None
        return self

    def get(self, session_id: bytes) -> StreamGiven | None:
        return self._given.get(session_id)

    def sessions(self) -> list[bytes]:
        """The purchases whose sellers gave us their streams."""
        return list(self._given)

    def add(self, given: StreamGiven) -> None:
        if self._save is None:
            raise StoreError(f"{self.path} is read here, not written")
        self._given[given.session_id] = given
        self._save(self.path, [to_plain(g, binary=False) for g in self._given.values()])


@dataclass(frozen=True, slots=True)
class Hop:
    """One stream of a value chain, verified: whose it is, the session, its receipt."""

    stream: KnownStream
    verified: Verified
    session: SessionRecord
    receipt: ReceiptRecord


def _hop(known: KnownStream, file: StreamFile) -> Hop | str:
    name = f"stream 0x{known.stream_id.hex()[:12]}"
    if file.root != known.root.raw:
        return f"{name}: the file holds another stream"
    verified = verify(known.root, file.messages, known.key, count=file.count)
    if not verified.ok:
        return f"{name} does not verify: {verified.problem}"
    records = verified.records
    session = records[0] if records else None
    if not isinstance(session, SessionRecord) or session.pay_to != known.root.author:
        return f"{name} does not record a session paid to its author"
    receipt = records[-1]
    if not isinstance(receipt, ReceiptRecord) or receipt.session != session.session:
        return f"{name} does not end with its session's receipt"
    if receipt.signers() != (session.pay_to, session.buyer):
        return f"{name}'s receipt is not signed by both parties"
    return Hop(known, verified, session, receipt)


def check_value_chain(
    known: Sequence[KnownStream], files: Sequence[StreamFile]
) -> tuple[list[Hop], str | None]:
    """The hops that check, from the purchase's own stream up, and the first problem
    (None: the whole chain checks)."""
    hops: list[Hop] = []
    if not known or len(known) != len(files):
        return hops, "a chain needs each stream's file"
    for number, (stream, file) in enumerate(zip(known, files, strict=True)):
        hop = _hop(stream, file)
        if isinstance(hop, str):
            return hops, hop
        if number and (
            hops[-1].stream.root.links[:1] != (stream.stream_id,)
            or hop.session.buyer != hops[-1].stream.root.author
        ):
            return hops, f"stream {number} is not what the one below it bought"
        hops.append(hop)
    return hops, None
