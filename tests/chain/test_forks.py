"""Fork detection in a log follower's window, against a chain kept in a dict."""

from __future__ import annotations

from dataclasses import replace

from m2mpay.chain.forks import BlockWindow, SentTransactions
from m2mpay.chain.ledger import LogEntry
from m2mpay.crypto import Address

HUB = Address("0x" + "11" * 20)


class FakeChain:
    """Block hashes by number; `reorg` replaces the blocks from a height on."""

    def __init__(self, length: int) -> None:
        self.hashes = {n: bytes([0, n]) * 16 for n in range(length)}
        self.asked: list[int] = []

    async def hash_at(self, number: int) -> bytes | None:
        self.asked.append(number)
        return self.hashes.get(number)

    def reorg(self, from_block: int, length: int, fork_id: int = 1) -> None:
        for n in [n for n in self.hashes if n >= from_block]:
            del self.hashes[n]
        for n in range(from_block, length):
            self.hashes[n] = bytes([fork_id, n]) * 16


def _log(chain: FakeChain, block: int, index: int = 0) -> LogEntry:
    return LogEntry(HUB, (), b"", block, bytes([block, index]) * 16, index, chain.hashes[block])


def _read(window: BlockWindow, chain: FakeChain, head: int, logs: list[LogEntry]) -> None:
    """One follower poll: its logs, then the head."""
    for entry in logs:
        window.delivered(entry)
    window.saw_block(head, chain.hashes[head])


async def test_a_quiet_chain_costs_one_hash_a_poll_and_has_no_fork() -> None:
    chain, window = FakeChain(10), BlockWindow()
    _read(window, chain, 5, [_log(chain, 3), _log(chain, 5)])
    assert await window.fork_point(chain.hash_at) is None
    chain.asked.clear()
    _read(window, chain, 9, [])
    assert await window.fork_point(chain.hash_at) is None
    assert chain.asked == [9]


async def test_a_replaced_head_is_found_and_its_logs_retracted_newest_first() -> None:
    chain, window = FakeChain(10), BlockWindow()
    delivered = [_log(chain, 4), _log(chain, 7, 0), _log(chain, 7, 1), _log(chain, 9)]
    _read(window, chain, 9, delivered)
    assert await window.fork_point(chain.hash_at) is None
    chain.reorg(7, 10)
    fork = await window.fork_point(chain.hash_at)
    assert fork == 4  # the newest block read that is still there
    removed = window.rewind(fork)
    assert [(e.block_number, e.log_index) for e in removed] == [(9, 0), (7, 1), (7, 0)]
    assert all(e.removed for e in removed)
    # Followed again from the fork: the window agrees with the new chain.
    _read(window, chain, 9, [_log(chain, 7)])
    assert await window.fork_point(chain.hash_at) is None


async def test_a_shorter_new_chain_is_a_fork_too() -> None:
    chain, window = FakeChain(10), BlockWindow(first_block=5)
    _read(window, chain, 9, [_log(chain, 8)])
    chain.reorg(6, 7)  # blocks 7.. no longer exist, and 6 was never read
    fork = await window.fork_point(chain.hash_at)
    assert fork == 4  # nothing held is left: follow again from where the follower began
    assert [e.block_number for e in window.rewind(fork)] == [8]


async def test_a_log_read_from_a_block_replaced_mid_poll_is_caught_next_poll() -> None:
    chain, window = FakeChain(10), BlockWindow()
    _read(window, chain, 5, [])
    stale = _log(chain, 7)
    chain.reorg(7, 10)  # between reading the logs and reading the head
    _read(window, chain, 9, [stale])
    fork = await window.fork_point(chain.hash_at)
    assert fork == 5
    assert window.rewind(fork) == [replace(stale, removed=True)]


async def test_a_reorganisation_deeper_than_the_window_retracts_all_it_holds() -> None:
    chain, window = FakeChain(200), BlockWindow(depth=8)
    for head in range(100, 200):
        _read(window, chain, head, [_log(chain, head)] if head % 10 == 0 else [])
    chain.reorg(150, 200)
    fork = await window.fork_point(chain.hash_at)
    assert fork == 191  # the oldest block held is 192
    assert [e.block_number for e in window.rewind(fork)] == []
    chain2, window2 = FakeChain(200), BlockWindow(depth=8)
    for head in range(180, 200):
        _read(window2, chain2, head, [_log(chain2, head)] if head == 195 else [])
    chain2.reorg(190, 200)
    fork2 = await window2.fork_point(chain2.hash_at)
    assert fork2 == 191
    assert [e.block_number for e in window2.rewind(fork2)] == [195]


def test_sent_transactions_suspected_after_a_fork_are_those_mined_after_it_or_unseen() -> None:
    sent = SentTransactions(kept=3)
    a, b = Address("0x" + "aa" * 20), Address("0x" + "bb" * 20)
    sent.sent(b"1", b, 4, b"raw1")
    sent.sent(b"2", a, 7, b"raw2")
    sent.sent(b"3", a, 6, b"raw3")
    sent.mined(b"1", 10)
    sent.mined(b"2", 20)
    assert [h for h, _ in sent.possibly_dropped(15)] == [b"3", b"2"]  # a's, in nonce order
    assert [h for h, _ in sent.possibly_dropped(5)] == [b"3", b"2", b"1"]
    sent.sent(b"4", a, 8, b"raw4")  # the oldest is forgotten
    assert b"1" not in [h for h, _ in sent.possibly_dropped(0)]
