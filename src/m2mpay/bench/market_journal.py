"""The market actor's journal (`m2mpay.bench.market_actor`): each operation's intent and
each transaction's signed bytes, made durable before they reach the chain (log, then act).

An operation is logged with its arguments before any of its transactions is signed;
each transaction is logged (hash, sender, nonce, bytes) by the ledger's
`before_broadcast` hook before it is broadcast. After a SIGKILL, an operation logged but
not finished is settled from its transactions: one mined finishes it (its receipt says
how); one the chain never saw is broadcast again, the same bytes, so that it can be
mined at most once; one whose nonce another of ours took is void. Only an operation with
no transaction on the chain is carried out again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from m2mpay.crypto import Address
from m2mpay.store.sqlite_file import FileKind, SqliteFile, in_transaction

__all__ = ["JournaledOp", "JournaledTx", "MarketJournal", "TxFate"]

_KIND: Final = FileKind(
    name="market journal",
    described="an m2mpay market actor's journal",
    application_id=0x6D326D6A,  # "m2mj"
    format=1,
    schema=(
        "CREATE TABLE ops (step INTEGER PRIMARY KEY, name TEXT NOT NULL, args TEXT NOT NULL,"
        " done INTEGER NOT NULL DEFAULT 0, result TEXT)",
        "CREATE TABLE txs (tx_hash BLOB PRIMARY KEY, step INTEGER NOT NULL,"
        " sender TEXT NOT NULL, nonce INTEGER NOT NULL, raw BLOB NOT NULL,"
        " fate INTEGER NOT NULL DEFAULT 0)",
    ),
)


class TxFate:
    """What became of a logged transaction, as far as the journal knows."""

    UNKNOWN: Final = 0  # logged; maybe broadcast, maybe not
    SUCCEEDED: Final = 1
    REVERTED: Final = 2
    VOID: Final = 3  # never mined: its nonce went to another transaction of ours


@dataclass(frozen=True, slots=True)
class JournaledOp:
    step: int
    name: str
    args: dict[str, Any]
    done: bool
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class JournaledTx:
    tx_hash: bytes
    step: int
    sender: Address
    nonce: int
    raw: bytes
    fate: int


class MarketJournal:
    """The journal file; every write returns once fsynced (`SqliteFile`)."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _KIND, thread_name="m2mpay-market-journal")
        self.step: int | None = None  # the operation whose transactions are being sent

    async def open(self) -> None:
        await self._file.open(lambda _: None, lambda _: None)

    async def close(self) -> None:
        await self._file.close()

    async def _write(self, query: str, *parameters: object) -> None:
        def write() -> None:
            in_transaction(self._file.db(), lambda db: db.execute(query, parameters))

        await self._file.call(write)

    async def intend(self, step: int, name: str, args: dict[str, Any]) -> None:
        await self._write(
            "INSERT INTO ops (step, name, args) VALUES (?, ?, ?)", step, name, json.dumps(args)
        )

    async def finish(self, step: int, result: dict[str, Any]) -> None:
        await self._write(
            "UPDATE ops SET done = 1, result = ? WHERE step = ?", json.dumps(result), step
        )

    async def log_tx(self, tx_hash: bytes, sender: Address, nonce: int, raw: bytes) -> None:
        """The ledger's `before_broadcast` hook: the transaction, under the current step."""
        if self.step is None:
            raise RuntimeError("a transaction outside any journaled operation")
        await self._write(
            "INSERT OR IGNORE INTO txs (tx_hash, step, sender, nonce, raw) VALUES (?, ?, ?, ?, ?)",
            tx_hash,
            self.step,
            sender.checksum,
            nonce,
            raw,
        )

    async def settle_tx(self, tx_hash: bytes, fate: int) -> None:
        await self._write("UPDATE txs SET fate = ? WHERE tx_hash = ?", fate, tx_hash)

    async def ops(self) -> list[JournaledOp]:
        def row(found: tuple[Any, ...]) -> JournaledOp:
            step, name, args, done, result = found
            return JournaledOp(
                step, name, json.loads(args), bool(done), json.loads(result) if result else None
            )

        return await self._file.select(
            row, "SELECT step, name, args, done, result FROM ops ORDER BY step"
        )

    async def txs(self, step: int | None = None) -> list[JournaledTx]:
        def row(found: tuple[Any, ...]) -> JournaledTx:
            tx_hash, at, sender, nonce, raw, fate = found
            return JournaledTx(bytes(tx_hash), at, Address(sender), nonce, bytes(raw), fate)

        query = "SELECT tx_hash, step, sender, nonce, raw, fate FROM txs"
        if step is None:
            return await self._file.select(row, query + " ORDER BY step, nonce")
        return await self._file.select(row, query + " WHERE step = ? ORDER BY nonce", step)
