"""An index of the embedded chain's event logs, written as each block is mined.

eth-tester answers a log query by fetching the receipt of every transaction in
the range, and finds each receipt by walking back from the head block by block:
reading logs from far behind the head costs time quadratic in the distance
(~15 s for 300 blocks). This index keeps one SQLite row per log, so a query is
one indexed range scan whatever the chain's length.

On a data dir the rows live in the chain's SQLite file and are committed in the
same transaction as the block that emitted them (see `SqliteChainDB`), so the
index never runs ahead of or behind the chain it describes. `indexed_through`
says how far it got, which lets a data dir written before the index existed be
caught up once when it is opened.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from m2mpay.crypto import Address

__all__ = ["IndexedLog", "LogIndex", "TopicFilter"]

# The EVM's LOG0..LOG4: a log has at most four topics, so each gets a column.
_MAX_TOPICS: Final = 4
_COLUMNS: Final = (
    "block_number, log_index, block_hash, tx_index, tx_hash, address, data,"
    " topic_count, topic0, topic1, topic2, topic3"
)

# Per position: None matches anything; bytes match exactly; a sequence matches
# any of its members (a None member makes the position a wildcard, an empty
# sequence matches nothing), as eth-tester's own filter did.
TopicFilter = Sequence[bytes | Sequence[bytes | None] | None]


class IndexedLog(NamedTuple):
    """One log with where it was emitted; `log_index` counts within the block."""

    block_number: int
    log_index: int
    block_hash: bytes
    tx_index: int
    tx_hash: bytes
    address: bytes
    data: bytes
    topics: tuple[bytes, ...]

    def outbound(self) -> dict[str, Any]:
        """This log as eth-tester returns one (`normalize_outbound_log_entry` of `raw`)."""
        return {
            "type": "mined",
            "log_index": self.log_index,
            "transaction_index": self.tx_index,
            "transaction_hash": "0x" + self.tx_hash.hex(),
            "block_hash": "0x" + self.block_hash.hex(),
            "block_number": self.block_number,
            "address": _checksum(self.address),
            "data": "0x" + self.data.hex(),
            "topics": ["0x" + topic.hex() for topic in self.topics],
        }

    def raw(self) -> dict[str, Any]:
        """This log in eth-tester's internal form (as its py-evm backend serializes one)."""
        return {
            "type": "mined",
            "log_index": self.log_index,
            "transaction_index": self.tx_index,
            "transaction_hash": self.tx_hash,
            "block_hash": self.block_hash,
            "block_number": self.block_number,
            "address": self.address,
            "data": self.data,
            "topics": list(self.topics),
        }


@functools.lru_cache(maxsize=1024)
def _checksum(address: bytes) -> str:
    # A keccak per log otherwise, for the few contracts that emit them all.
    return Address(address).checksum


class LogIndex:
    """Logs by block, address and topics in SQLite tables of their own.

    `stage` buffers a mined block's logs; they become visible and durable when
    the owner of the connection commits (`commit` here, or `SqliteChainDB.commit`
    for the chain's file, which calls `write_pending` inside its transaction).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS logs ("
            " block_number INTEGER NOT NULL, log_index INTEGER NOT NULL,"
            " block_hash BLOB NOT NULL, tx_index INTEGER NOT NULL, tx_hash BLOB NOT NULL,"
            " address BLOB NOT NULL, data BLOB NOT NULL, topic_count INTEGER NOT NULL,"
            " topic0 BLOB, topic1 BLOB, topic2 BLOB, topic3 BLOB,"
            " PRIMARY KEY (block_number, log_index)) WITHOUT ROWID"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS logs_by_address ON logs (address, block_number)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS logs_indexed"
            " (id INTEGER PRIMARY KEY CHECK (id = 0), through INTEGER NOT NULL)"
        )
        self._pending_blocks: dict[int, list[IndexedLog]] = {}

    @classmethod
    def in_memory(cls) -> LogIndex:
        """An index for a chain that is not persisted either."""
        return cls(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False))

    def indexed_through(self) -> int:
        """The newest block whose logs are in the index (staged ones included); -1 if none."""
        if self._pending_blocks:
            return max(self._pending_blocks)
        row = self._conn.execute("SELECT through FROM logs_indexed WHERE id = 0").fetchone()
        return -1 if row is None else int(row[0])

    def stage(self, block_number: int, logs: Sequence[IndexedLog]) -> None:
        """Buffer the logs of a mined block (replacing what the index holds for it)."""
        if any(len(log.topics) > _MAX_TOPICS for log in logs):
            raise ValueError(f"a log has at most {_MAX_TOPICS} topics")
        self._pending_blocks[block_number] = list(logs)

    def has_pending(self) -> bool:
        return bool(self._pending_blocks)

    def write_pending(self, conn: sqlite3.Connection) -> None:
        """Write the staged blocks; the caller holds the transaction."""
        if not self._pending_blocks:
            return
        conn.executemany(
            "DELETE FROM logs WHERE block_number = ?", [(n,) for n in self._pending_blocks]
        )
        conn.executemany(
            f"INSERT INTO logs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_row(log) for logs in self._pending_blocks.values() for log in logs],
        )
        conn.execute(
            "INSERT OR REPLACE INTO logs_indexed (id, through) VALUES (0, ?)",
            (max(self._pending_blocks),),
        )

    def clear_pending(self) -> None:
        """Forget the staged blocks once the transaction that wrote them committed."""
        self._pending_blocks.clear()

    def commit(self) -> None:
        """Write the staged blocks in a transaction of this index's own."""
        if not self._pending_blocks:
            return
        self._conn.execute("BEGIN")
        try:
            self.write_pending(self._conn)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self.clear_pending()

    def query(
        self,
        from_block: int,
        to_block: int,
        addresses: Sequence[bytes] | None = None,
        topics: TopicFilter | None = None,
    ) -> list[IndexedLog]:
        """Committed logs in [from_block, to_block] from any of `addresses` (None: any
        address) that match `topics`, in chain order."""
        where = ["block_number BETWEEN ? AND ?"]
        params: list[object] = [from_block, to_block]
        if addresses is not None:
            where.append(f"address IN ({_marks(len(addresses))})")
            params.extend(addresses)
        if topics:
            # A filter on position i only matches logs that have a topic i, even a
            # wildcard: as eth-tester (so this ledger keeps its behaviour) and geth
            # do; Anvil lets trailing wildcards match absent topics.
            if len(topics) > _MAX_TOPICS:
                return []
            where.append("topic_count >= ?")
            params.append(len(topics))
            for position, wanted in enumerate(topics):
                clause = _topic_clause(position, wanted, params)
                if clause is not None:
                    where.append(clause)
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM logs WHERE {' AND '.join(where)}"
            " ORDER BY block_number, log_index",
            params,
        ).fetchall()
        return [_log(row) for row in rows]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _topic_clause(
    position: int, wanted: bytes | Sequence[bytes | None] | None, params: list[object]
) -> str | None:
    if wanted is None:
        return None
    if isinstance(wanted, bytes):
        params.append(wanted)
        return f"topic{position} = ?"
    if any(option is None for option in wanted):
        return None
    if not wanted:
        return "0"
    params.extend(wanted)
    return f"topic{position} IN ({_marks(len(wanted))})"


def _row(log: IndexedLog) -> tuple[object, ...]:
    topics = list(log.topics) + [None] * (_MAX_TOPICS - len(log.topics))
    return (
        log.block_number,
        log.log_index,
        log.block_hash,
        log.tx_index,
        log.tx_hash,
        log.address,
        log.data,
        len(log.topics),
        *topics,
    )


def _log(row: tuple[Any, ...]) -> IndexedLog:
    block_number, log_index, block_hash, tx_index, tx_hash, address, data, count, *topics = row
    return IndexedLog(
        block_number=int(block_number),
        log_index=int(log_index),
        block_hash=bytes(block_hash),
        tx_index=int(tx_index),
        tx_hash=bytes(tx_hash),
        address=bytes(address),
        data=bytes(data),
        topics=tuple(bytes(t) for t in topics[:count]),
    )
