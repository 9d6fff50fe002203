"""`LogIndex` alone: the filter semantics of a log query and atomic commits with the chain."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from m2mpay.chain.chaindb import SqliteChainDB
from m2mpay.chain.logindex import IndexedLog, LogIndex, TopicFilter

A, B, C = b"\xaa" * 20, b"\xbb" * 20, b"\xcc" * 20
T1, T2, T3, T4 = (bytes([n]) * 32 for n in (1, 2, 3, 4))


def _log(block: int, index: int, address: bytes, *topics: bytes) -> IndexedLog:
    return IndexedLog(
        block_number=block,
        log_index=index,
        block_hash=block.to_bytes(32, "big"),
        tx_index=0,
        tx_hash=(1000 + block).to_bytes(32, "big"),
        address=address,
        data=bytes([block, index]),
        topics=topics,
    )


LOGS = [
    _log(1, 0, A, T1),
    _log(1, 1, B, T1, T2),
    _log(2, 0, A, T2, T3),
    _log(4, 0, C),
    _log(4, 1, A, T1, T2, T3, T4),
    _log(5, 0, B, T3),
]


@pytest.fixture
def index() -> LogIndex:
    index = LogIndex.in_memory()
    for block in sorted({log.block_number for log in LOGS}):
        index.stage(block, [log for log in LOGS if log.block_number == block])
    index.commit()
    return index


def _expected(
    addresses: list[bytes] | None, topics: TopicFilter | None, first: int, last: int
) -> list[IndexedLog]:
    """The same filter, written the plain way."""

    def topic_matches(log: IndexedLog) -> bool:
        if not topics:
            return True
        if len(log.topics) < len(topics):
            return False
        for have, want in zip(log.topics, topics, strict=False):
            if want is None or (not isinstance(want, bytes) and None in want):
                continue
            if have != want if isinstance(want, bytes) else have not in want:
                return False
        return True

    return [
        log
        for log in LOGS
        if first <= log.block_number <= last
        and (addresses is None or log.address in addresses)
        and topic_matches(log)
    ]


@pytest.mark.parametrize(
    ("addresses", "topics", "first", "last"),
    [
        pytest.param(None, None, 0, 10, id="everything"),
        pytest.param([A], None, 0, 10, id="one address"),
        pytest.param([A, C], None, 0, 10, id="two addresses"),
        pytest.param([A], None, 2, 4, id="block range"),
        pytest.param(None, None, 3, 3, id="block without logs"),
        pytest.param(None, [], 0, 10, id="empty topic filter"),
        pytest.param(None, [T1], 0, 10, id="first topic"),
        pytest.param(None, [None, T2], 0, 10, id="wildcard then topic"),
        pytest.param(None, [None], 0, 10, id="wildcard needs a topic"),
        pytest.param(None, [[T2, T3]], 0, 10, id="alternatives"),
        pytest.param(None, [T1, [T2, None]], 0, 10, id="alternative with wildcard"),
        pytest.param(None, [T1, T2, T3, T4], 0, 10, id="four topics"),
        pytest.param([B], [T1, T2], 0, 10, id="address and topics"),
        pytest.param(None, [T1, None, None, None], 0, 10, id="trailing wildcards need topics"),
    ],
)
def test_query_matches_the_plain_filter(
    index: LogIndex,
    addresses: list[bytes] | None,
    topics: TopicFilter | None,
    first: int,
    last: int,
) -> None:
    assert index.query(first, last, addresses, topics) == _expected(addresses, topics, first, last)


def test_an_empty_alternative_or_a_fifth_topic_matches_nothing(index: LogIndex) -> None:
    assert index.query(0, 10, None, [T1, []]) == []
    assert index.query(0, 10, None, [None, None, None, None, None]) == []
    assert index.query(0, 10, []) == []


def test_results_come_in_chain_order(index: LogIndex) -> None:
    got = index.query(0, 10)
    assert [(log.block_number, log.log_index) for log in got] == sorted(
        (log.block_number, log.log_index) for log in LOGS
    )
    assert got == LOGS


def test_staged_logs_are_visible_once_committed_and_replace_their_block() -> None:
    index = LogIndex.in_memory()
    assert index.indexed_through() == -1
    index.stage(0, [])
    index.stage(1, [_log(1, 0, A, T1)])
    assert index.indexed_through() == 1
    assert index.query(0, 10) == []
    index.commit()
    assert index.query(0, 10) == [_log(1, 0, A, T1)]
    index.stage(1, [_log(1, 0, B, T2)])
    index.commit()
    assert index.query(0, 10) == [_log(1, 0, B, T2)]
    assert index.indexed_through() == 1


def test_a_log_has_at_most_four_topics() -> None:
    with pytest.raises(ValueError, match="at most 4 topics"):
        LogIndex.in_memory().stage(1, [_log(1, 0, A, T1, T2, T3, T4, T1)])


class _FailsOnce:
    """A participant whose first write fails, as a full disk would."""

    def __init__(self) -> None:
        self.failed = False

    def has_pending(self) -> bool:
        return False

    def write_pending(self, conn: sqlite3.Connection) -> None:
        if not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("disk full")

    def clear_pending(self) -> None:
        pass


def test_logs_commit_in_the_chain_transaction_or_not_at_all(tmp_path: Path) -> None:
    db = SqliteChainDB(tmp_path / "chain.sqlite3", synchronous="OFF")
    index = LogIndex(db.connection)
    db.add_participant(index)
    db.add_participant(_FailsOnce())
    db[b"block"] = b"1"
    index.stage(1, [_log(1, 0, A, T1)])
    with pytest.raises(sqlite3.OperationalError):
        db.commit()
    reopened = SqliteChainDB(tmp_path / "chain.sqlite3")
    assert LogIndex(reopened.connection).query(0, 10) == []
    with pytest.raises(KeyError):
        reopened[b"block"]
    reopened.close()

    db.commit()  # what stayed buffered commits as a whole, once the disk has room
    db.close()
    reopened = SqliteChainDB(tmp_path / "chain.sqlite3")
    assert reopened[b"block"] == b"1"
    reopened_index = LogIndex(reopened.connection)
    assert reopened_index.query(0, 10) == [_log(1, 0, A, T1)]
    assert reopened_index.indexed_through() == 1
    reopened.close()


def test_logs_alone_are_committed(tmp_path: Path) -> None:
    """Indexing an old data dir stages logs without any write of py-evm's."""
    db = SqliteChainDB(tmp_path / "chain.sqlite3")
    index = LogIndex(db.connection)
    db.add_participant(index)
    index.stage(7, [_log(7, 0, C)])
    db.commit()
    assert not index.has_pending()
    assert index.query(0, 10) == [_log(7, 0, C)]
    db.close()
