"""Where transfer sales are kept: the terms enabled, each transfer counted, the credit
held for senders and the follower's cursor, in one SQLite file of the data dir
(`transfer-sales.sqlite3`) through the store's `SqliteFile`.

A batch of transfers is recorded in one transaction with the cursor that passes them,
and a transfer already recorded (its purchase id: transaction and position) is left
as it was, so reading a block again after a restart or a reorganisation counts nothing
twice. Amounts are decimal text: a uint256 does not fit SQLite's integers.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from m2mpay.crypto import Address
from m2mpay.market.transfer_sales import (
    Change,
    TransferPurchase,
    TransferSale,
    TransferTerms,
    sell,
)
from m2mpay.store.sqlite_file import FileKind, SqliteFile, in_transaction

__all__ = ["SeenTransfer", "TransferSaleStore"]

_T = TypeVar("_T")

_SCHEMA: Final = (
    "CREATE TABLE terms (offer_id BLOB PRIMARY KEY, device BLOB NOT NULL,"
    " service TEXT NOT NULL, token BLOB NOT NULL, price TEXT NOT NULL,"
    " minimum INTEGER NOT NULL, maximum INTEGER NOT NULL, confirmations INTEGER NOT NULL,"
    " underpay TEXT NOT NULL, overpay TEXT NOT NULL, from_block INTEGER NOT NULL) STRICT",
    "CREATE TABLE purchase (id BLOB PRIMARY KEY, offer_id BLOB NOT NULL,"
    " device BLOB NOT NULL, service TEXT NOT NULL,"
    " tx_hash BLOB NOT NULL, position INTEGER NOT NULL, block_number INTEGER NOT NULL,"
    " sender BLOB NOT NULL, amount TEXT NOT NULL, units INTEGER NOT NULL,"
    " paid TEXT NOT NULL, kept TEXT NOT NULL, credit TEXT NOT NULL,"
    " delivered INTEGER NOT NULL, done INTEGER NOT NULL, recorded_ms INTEGER NOT NULL) STRICT",
    "CREATE TABLE credit (offer_id BLOB NOT NULL, sender BLOB NOT NULL, amount TEXT NOT NULL,"
    " PRIMARY KEY (offer_id, sender)) STRICT, WITHOUT ROWID",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT",
)
_KIND: Final = FileKind(
    name="transfer sale store",
    described="a transfer sale store",
    application_id=0x6D32747A,  # "m2tz": this file holds m2mpay transfer sales
    format=1,
    schema=_SCHEMA,
)
_CURSOR: Final = "cursor"
_TERMS_COLUMNS: Final = (
    "offer_id, device, service, token, price, minimum, maximum, confirmations,"
    " underpay, overpay, from_block"
)
_PURCHASE_COLUMNS: Final = (
    "id, offer_id, device, service, tx_hash, position, block_number, sender, amount, units,"
    " paid, kept, credit, delivered, done"
)


@dataclass(frozen=True, slots=True)
class SeenTransfer:
    """A confirmed transfer to a device, about to be counted under `terms`."""

    purchase_id: bytes
    terms: TransferTerms
    tx_hash: bytes
    position: int
    block_number: int
    sender: Address
    amount: int


class TransferSaleStore:
    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _KIND, thread_name="m2mpay-transfer-sales")
        self.path = path

    async def open(self) -> None:
        if not self._file.is_open:
            await self._file.open(lambda _conn: None, lambda _conn: None)

    async def close(self) -> None:
        await self._file.close()

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return in_transaction(self._file.db(), work, "BEGIN IMMEDIATE")

    # -- the follower's cursor

    async def cursor(self) -> bytes | None:
        rows = await self._file.select(
            lambda row: bytes(row[0]), "SELECT value FROM meta WHERE key = ?", _CURSOR
        )
        return rows[0] if rows else None

    async def save_cursor(self, record: bytes) -> None:
        await self._file.call(self._write, lambda conn: _put_cursor(conn, record))

    # -- terms

    async def terms(self) -> list[TransferTerms]:
        return await self._file.select(_terms, f"SELECT {_TERMS_COLUMNS} FROM terms")

    async def save_terms(self, terms: TransferTerms) -> None:
        """Enable `terms`; any other terms of the same device and token are replaced,
        so a transfer to a device is sold under one offer only."""

        def save(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM terms WHERE device = ? AND token = ?",
                (bytes(terms.device), bytes(terms.token)),
            )
            conn.execute(
                f"INSERT OR REPLACE INTO terms ({_TERMS_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    terms.offer_id,
                    bytes(terms.device),
                    terms.service,
                    bytes(terms.token),
                    str(terms.price),
                    terms.minimum,
                    terms.maximum,
                    terms.confirmations,
                    terms.underpay.value,
                    terms.overpay.value,
                    terms.from_block,
                ),
            )

        await self._file.call(self._write, save)

    async def remove_terms(self, offer_id: bytes) -> None:
        await self._file.call(
            self._write,
            lambda conn: conn.execute("DELETE FROM terms WHERE offer_id = ?", (offer_id,)),
        )

    # -- purchases

    async def record(self, seen: Sequence[SeenTransfer], cursor: bytes) -> list[TransferPurchase]:
        """Count the transfers not counted before, each at its sender's credit, and move
        the cursor, in one transaction; the purchases new to the store."""

        def record(conn: sqlite3.Connection) -> list[TransferPurchase]:
            new = [p for s in seen if (p := _record_one(conn, s)) is not None]
            _put_cursor(conn, cursor)
            return new

        return await self._file.call(self._write, record)

    async def delivered(self, purchase_id: bytes, units: int, done: bool) -> None:
        await self._file.call(
            self._write,
            lambda conn: conn.execute(
                "UPDATE purchase SET delivered = max(delivered, ?), done = max(done, ?)"
                " WHERE id = ?",
                (units, int(done), purchase_id),
            ),
        )

    async def purchases(self, *, undone: bool = False) -> list[TransferPurchase]:
        where = " WHERE done = 0 AND units > 0" if undone else ""
        return await self._file.select(
            _purchase, f"SELECT {_PURCHASE_COLUMNS} FROM purchase{where} ORDER BY recorded_ms, id"
        )

    async def credit(self, offer_id: bytes, sender: Address) -> int:
        rows = await self._file.select(
            lambda row: int(row[0]),
            "SELECT amount FROM credit WHERE offer_id = ? AND sender = ?",
            offer_id,
            bytes(sender),
        )
        return rows[0] if rows else 0


def _put_cursor(conn: sqlite3.Connection, record: bytes) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_CURSOR, record))


def _record_one(conn: sqlite3.Connection, seen: SeenTransfer) -> TransferPurchase | None:
    known = conn.execute("SELECT 1 FROM purchase WHERE id = ?", (seen.purchase_id,)).fetchone()
    if known is not None:
        return None
    terms = seen.terms
    key = (terms.offer_id, bytes(seen.sender))
    row = conn.execute("SELECT amount FROM credit WHERE offer_id = ? AND sender = ?", key)
    held = row.fetchone()
    sale = sell(seen.amount, int(held[0]) if held else 0, terms)
    conn.execute(
        "INSERT OR REPLACE INTO credit (offer_id, sender, amount) VALUES (?, ?, ?)",
        (*key, str(sale.credit)),
    )
    conn.execute(
        f"INSERT INTO purchase ({_PURCHASE_COLUMNS}, recorded_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?)",
        (
            seen.purchase_id,
            terms.offer_id,
            bytes(terms.device),
            terms.service,
            seen.tx_hash,
            seen.position,
            seen.block_number,
            bytes(seen.sender),
            str(seen.amount),
            sale.units,
            str(sale.paid),
            str(sale.kept),
            str(sale.credit),
            time.time_ns() // 1_000_000,
        ),
    )
    return TransferPurchase(
        seen.purchase_id,
        terms.offer_id,
        terms.device,
        terms.service,
        seen.tx_hash,
        seen.position,
        seen.block_number,
        seen.sender,
        seen.amount,
        sale,
        done=sale.units == 0,
    )


def _terms(row: tuple[Any, ...]) -> TransferTerms:
    offer_id, device, service, token, price, minimum, maximum, confirmations, *rest = row
    underpay, overpay, from_block = rest
    return TransferTerms(
        bytes(offer_id),
        Address(bytes(device)),
        str(service),
        Address(bytes(token)),
        int(price),
        int(minimum),
        int(maximum),
        int(confirmations),
        Change(underpay),
        Change(overpay),
        int(from_block),
    )


def _purchase(row: tuple[Any, ...]) -> TransferPurchase:
    purchase_id, offer_id, device, service, tx_hash, position, block, sender, *rest = row
    amount, units, paid, kept, credit, delivered, done = rest
    return TransferPurchase(
        bytes(purchase_id),
        bytes(offer_id),
        Address(bytes(device)),
        str(service),
        bytes(tx_hash),
        int(position),
        int(block),
        Address(bytes(sender)),
        int(amount),
        TransferSale(int(units), int(paid), int(kept), int(credit)),
        int(delivered),
        bool(done) or int(units) == 0,
    )
