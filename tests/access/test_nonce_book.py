"""The `exact` scheme's nonce book: a nonce is recorded once (a twin is refused), marked
settled, forgotten only while merely recorded, and kept across a reopening; a file of
another kind is refused."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest

from m2mpay.access.nonce_book import NonceBook
from m2mpay.crypto import PrivateKey, TransferAuthorization
from m2mpay.errors import StoreError

PAYER, SELLER = PrivateKey.generate(), PrivateKey.generate()


def _authorization() -> TransferAuthorization:
    return TransferAuthorization(
        PAYER.address, SELLER.address, 10**30, 0, 2**64, secrets.token_bytes(32)
    )


async def test_a_nonce_is_recorded_once_settled_and_kept_across_a_reopening(
    tmp_path: Path,
) -> None:
    paid, unsent = _authorization(), _authorization()
    signature = PAYER.sign_digest(b"\x01" * 32)
    async with NonceBook(tmp_path / "book.sqlite3") as book:
        assert await book.record(paid, signature, "http://x/data")
        assert not await book.record(paid, signature, "http://x/data")  # a twin, refused
        assert await book.record(unsent, signature, "http://x/data")
        await book.settled(PAYER.address, paid.nonce, "0xab")
        await book.forget(PAYER.address, paid.nonce)  # settled: never forgotten
    async with NonceBook(tmp_path / "book.sqlite3") as book:
        assert await book.state(PAYER.address, paid.nonce) == "settled"
        [left] = await book.unsettled()
        assert left.authorization == unsent
        assert left.signature == signature
        await book.forget(PAYER.address, unsent.nonce)
        assert not await book.knows(PAYER.address, unsent.nonce)
        assert await book.record(unsent, signature, "http://x/data")  # may pay again


async def test_a_sqlite_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a paywall nonce book"):
        await NonceBook(other).open()
