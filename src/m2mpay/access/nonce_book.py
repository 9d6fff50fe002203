"""The `exact` scheme's book of EIP-3009 authorizations, durable before any is sent.

Log, then act: an authorization is recorded (`recorded`) before the seller sends it to
the token, and marked `settled` with its transaction once the receipt is in; only then
is the request served. A nonce in the book is never accepted again, so a replay is
refused before anything is sent. A process killed between the record and the mark
leaves a `recorded` row, which the scheme reconciles at start with the token's
`authorizationState`: used on chain, it is `settled` (paid, and never served again);
unused, it is forgotten (nothing was charged, so the payer may send it again).

One SQLite file of the seller's (`paywall.sqlite3`) through the store's `SqliteFile`;
amounts are decimal text, as a uint256 does not fit SQLite's integers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from m2mpay.crypto import Address, Signature, TransferAuthorization
from m2mpay.store.sqlite_file import FileKind, SqliteFile, in_transaction

__all__ = ["BookedAuthorization", "NonceBook"]

_T = TypeVar("_T")

_SCHEMA: Final = (
    "CREATE TABLE authorization (payer BLOB NOT NULL, nonce BLOB NOT NULL,"
    " receiver BLOB NOT NULL, value TEXT NOT NULL, valid_after TEXT NOT NULL,"
    " valid_before TEXT NOT NULL, signature TEXT NOT NULL, resource TEXT NOT NULL,"
    " state TEXT NOT NULL, tx_hash TEXT NOT NULL, PRIMARY KEY (payer, nonce)) STRICT",
)
_KIND: Final = FileKind(
    name="paywall nonce book",
    described="a paywall nonce book",
    application_id=0x6D327077,  # "m2pw": this file holds an m2mpay paywall's payments
    format=1,
    schema=_SCHEMA,
)
RECORDED: Final = "recorded"
SETTLED: Final = "settled"


@dataclass(frozen=True, slots=True)
class BookedAuthorization:
    authorization: TransferAuthorization
    signature: Signature
    resource: str
    state: str
    tx_hash: str


class NonceBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, _KIND, thread_name="m2mpay-paywall-book")

    async def open(self) -> None:
        if not self._file.is_open:
            await self._file.open(lambda _conn: None, lambda _conn: None)

    async def close(self) -> None:
        await self._file.close()

    async def __aenter__(self) -> NonceBook:
        await self.open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return in_transaction(self._file.db(), work, "BEGIN IMMEDIATE")

    async def knows(self, payer: Address, nonce: bytes) -> bool:
        rows = await self._file.select(
            lambda row: row[0],
            "SELECT 1 FROM authorization WHERE payer = ? AND nonce = ?",
            bytes(payer),
            nonce,
        )
        return bool(rows)

    async def record(
        self, authorization: TransferAuthorization, signature: Signature, resource: str
    ) -> bool:
        """Record `authorization` as about to be sent, durably (the commit is fsynced);
        False when its nonce is in the book already (a replay, or a twin in flight)."""

        def insert(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO authorization VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                (
                    bytes(authorization.sender),
                    authorization.nonce,
                    bytes(authorization.receiver),
                    str(authorization.value),
                    str(authorization.valid_after),
                    str(authorization.valid_before),
                    "0x" + signature.hex(),
                    resource,
                    RECORDED,
                ),
            )
            return cursor.rowcount == 1

        return await self._file.call(self._write, insert)

    async def settled(self, payer: Address, nonce: bytes, tx_hash: str) -> None:
        await self._update(
            "UPDATE authorization SET state = ?, tx_hash = ? WHERE payer = ? AND nonce = ?",
            SETTLED,
            tx_hash,
            bytes(payer),
            nonce,
        )

    async def forget(self, payer: Address, nonce: bytes) -> None:
        """Drop an authorization that moved nothing (its transaction reverted, or it was
        never sent), so its payer may send it again."""
        await self._update(
            "DELETE FROM authorization WHERE payer = ? AND nonce = ? AND state = ?",
            bytes(payer),
            nonce,
            RECORDED,
        )

    async def unsettled(self) -> list[BookedAuthorization]:
        """The authorizations recorded but not marked settled: a crash came between."""
        return await self._file.select(
            _booked,
            "SELECT payer, nonce, receiver, value, valid_after, valid_before, signature,"
            " resource, state, tx_hash FROM authorization WHERE state = ?",
            RECORDED,
        )

    async def state(self, payer: Address, nonce: bytes) -> str | None:
        rows = await self._file.select(
            lambda row: str(row[0]),
            "SELECT state FROM authorization WHERE payer = ? AND nonce = ?",
            bytes(payer),
            nonce,
        )
        return rows[0] if rows else None

    async def _update(self, query: str, *parameters: object) -> None:
        await self._file.call(self._write, lambda conn: conn.execute(query, parameters))


def _booked(row: tuple[object, ...]) -> BookedAuthorization:
    payer, nonce, receiver, value, after, before, signature, resource, state, tx = row
    authorization = TransferAuthorization(
        Address(bytes(payer)),  # type: ignore[call-overload]
        Address(bytes(receiver)),  # type: ignore[call-overload]
        int(str(value)),
        int(str(after)),
        int(str(before)),
        bytes(nonce),  # type: ignore[call-overload]
    )
    return BookedAuthorization(
        authorization, Signature(str(signature)), str(resource), str(state), str(tx)
    )
