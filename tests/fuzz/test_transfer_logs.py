"""Transfer logs against hostile input: `decode_transfer` returns a sender, a receiver
and an amount only for a well-formed ERC-20 `Transfer` (three topics, 32-byte words
with clean address padding, a 32-byte amount), and None for anything else a token
contract may emit, never raising."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.chain.ledger import LogEntry
from m2mpay.crypto import Address
from m2mpay.market.transfer_follow import TRANSFER_TOPIC, decode_transfer
from tests.fuzz.hostile import FUZZ

pytestmark = pytest.mark.timeout(60)

TOKEN = Address("0x" + "33" * 20)
words = st.binary(min_size=0, max_size=40)


def _log(topics: tuple[bytes, ...], data: bytes) -> LogEntry:
    return LogEntry(TOKEN, topics, data, 1, b"\x01" * 32, 0)


@FUZZ
@given(topics=st.lists(words, max_size=5), data=st.binary(max_size=80), real=st.booleans())
def test_any_log_decodes_to_a_transfer_or_none(
    topics: list[bytes], data: bytes, real: bool
) -> None:
    if real and topics:
        topics[0] = TRANSFER_TOPIC
    decoded = decode_transfer(_log(tuple(topics), data))
    if decoded is None:
        return
    sender, receiver, amount = decoded
    assert (len(topics), topics[0], len(data)) == (3, TRANSFER_TOPIC, 32)
    assert (topics[1], topics[2]) == (bytes(12) + sender, bytes(12) + receiver)
    assert 0 <= amount < 2**256


@given(
    sender=st.binary(min_size=20, max_size=20),
    receiver=st.binary(min_size=20, max_size=20),
    amount=st.integers(0, 2**256 - 1),
    dirt=st.binary(min_size=12, max_size=12).filter(any),
)
def test_a_transfer_decodes_exactly_and_dirty_padding_is_refused(
    sender: bytes, receiver: bytes, amount: int, dirt: bytes
) -> None:
    data = amount.to_bytes(32, "big")
    clean = (TRANSFER_TOPIC, bytes(12) + sender, bytes(12) + receiver)
    assert decode_transfer(_log(clean, data)) == (Address(sender), Address(receiver), amount)
    dirty = (TRANSFER_TOPIC, dirt + sender, bytes(12) + receiver)
    assert decode_transfer(_log(dirty, data)) is None
