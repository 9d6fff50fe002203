"""A stored cursor and the block hashes that vouch for it, without a chain."""

from __future__ import annotations

from m2mpay.chain.anchors import Anchors, parse_cursor


def _hash(number: int, fork: str = "a") -> bytes:
    return f"{fork}{number}".encode().ljust(32, b"\0")


class _Chain:
    """Block hashes by number: blocks from `fork_at` on belong to another chain."""

    def __init__(self, head: int, fork_at: int | None = None) -> None:
        self.head, self.fork_at = head, fork_at
        self.reads = 0

    async def hash_at(self, number: int) -> bytes | None:
        self.reads += 1
        if number > self.head:
            return None
        replaced = self.fork_at is not None and number >= self.fork_at
        return _hash(number, "b" if replaced else "a")


def test_the_stored_form_reads_back_and_older_stores_hold_a_bare_number() -> None:
    anchors = Anchors()
    assert anchors.record(7) == b"7"
    assert parse_cursor(b"7") == (7, {})
    anchors.saw(8, _hash(8))
    anchors.saw(5, _hash(5))
    assert parse_cursor(anchors.record(7)) == (7, {5: _hash(5), 8: _hash(8)})


def test_anchors_thin_to_doubling_distances_from_the_newest() -> None:
    anchors = Anchors()
    for number in range(40_000):
        anchors.saw(number, _hash(number))
        if number % 997 == 0 and number > 2**14:
            _, kept = parse_cursor(anchors.record(0))
            assert len(kept) <= 16
            distances = sorted(number - n for n in kept)
            assert distances[:2] == [0, 1]
            # A deep reorganisation still finds a block to read again from.
            assert distances[-1] >= 2**14


async def test_no_fork_when_the_newest_anchor_holds_one_read() -> None:
    anchors = Anchors({3: _hash(3), 9: _hash(9)})
    chain = _Chain(head=12)
    assert await anchors.fork_point(chain.hash_at) is None
    assert chain.reads == 1


async def test_the_fork_point_is_the_newest_anchor_still_in_the_chain() -> None:
    anchors = Anchors({number: _hash(number) for number in (2, 5, 8, 9)})
    assert await anchors.fork_point(_Chain(head=9, fork_at=7).hash_at) == 5
    # What was seen of the replaced blocks vouches for nothing any more.
    assert parse_cursor(anchors.record(5))[1] == {2: _hash(2), 5: _hash(5)}


async def test_a_reorganisation_deeper_than_every_anchor_reads_everything_again() -> None:
    anchors = Anchors({4: _hash(4), 6: _hash(6)})
    assert await anchors.fork_point(_Chain(head=9, fork_at=1).hash_at) == -1
    assert anchors.record(0) == b"0"


async def test_a_chain_shorter_than_the_newest_anchor_has_replaced_it() -> None:
    anchors = Anchors({4: _hash(4), 10: _hash(10)})
    assert await anchors.fork_point(_Chain(head=8).hash_at) == 4
