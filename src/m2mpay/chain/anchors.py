"""A stored chain cursor, with block hashes that vouch for what was read up to it.

A reader (a node, the watcher) stores how far it has applied the chain (its cursor)
and, after a restart, reads on from there. A reorganisation while it was stopped may
have replaced blocks it had read: their events are then facts the chain no longer
holds. So the cursor is stored with a few (block, hash) anchors the reader saw on the
chain, the newest at or above the cursor and older ones at doubling distances below
it: on start, the newest anchor still holding its hash proves every block up to it
unchanged (a block names its parent), and the reader reads again only from there.
When no anchor holds (a reorganisation deeper than the oldest, some 2**14 blocks or
more), everything is read again from the start.

The stored form is `N` (older stores; nothing vouches for it) or `N@n:hash,n:hash,…`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

__all__ = ["Anchors", "parse_cursor"]

_KEPT: Final = 16  # doubling distances: the oldest anchor lies ~2**15 blocks down

HashAt = Callable[[int], Awaitable[bytes | None]]


def parse_cursor(raw: bytes) -> tuple[int, dict[int, bytes]]:
    """The cursor and its anchors from their stored form."""
    text = raw.decode()
    cursor, _, rest = text.partition("@")
    anchors: dict[int, bytes] = {}
    for item in filter(None, rest.split(",")):
        number, _, block_hash = item.partition(":")
        anchors[int(number)] = bytes.fromhex(block_hash)
    return int(cursor), anchors


class Anchors:
    """Blocks whose hashes the node saw on the chain, thinned to doubling distances."""

    def __init__(self, anchors: dict[int, bytes] | None = None) -> None:
        self._hashes: dict[int, bytes] = dict(anchors or {})

    def record(self, cursor: int) -> bytes:
        """The stored form of `cursor`, vouched for by these anchors."""
        anchors = ",".join(f"{n}:{h.hex()}" for n, h in sorted(self._hashes.items()))
        return f"{cursor}@{anchors}".encode() if anchors else str(cursor).encode()

    def saw(self, number: int, block_hash: bytes) -> None:
        if not block_hash or self._hashes.get(number) == block_hash:
            return
        self._hashes[number] = block_hash
        newest = max(self._hashes)
        # One anchor per band of doubling distance from the newest, the oldest in it:
        # an anchor then ages band by band down to the deepest instead of being pushed
        # out by newer ones.
        kept: dict[int, int] = {}
        for n in sorted(self._hashes):
            kept.setdefault((newest - n).bit_length(), n)
        for n in set(self._hashes) - {n for band, n in kept.items() if band < _KEPT}:
            del self._hashes[n]

    def forget_from(self, number: int) -> None:
        """Blocks from `number` on were replaced: what was seen of them vouches for nothing."""
        for n in [n for n in self._hashes if n >= number]:
            del self._hashes[n]

    async def fork_point(self, hash_at: HashAt) -> int | None:
        """None when the newest anchor still holds (or there is none); otherwise the
        newest block still holding its hash, or -1 when none does."""
        if not self._hashes:
            return None
        ordered = sorted(self._hashes, reverse=True)
        if await hash_at(ordered[0]) == self._hashes[ordered[0]]:
            return None
        for number in ordered[1:]:
            if await hash_at(number) == self._hashes[number]:
                self.forget_from(number + 1)
                return number
        self._hashes.clear()
        return -1
