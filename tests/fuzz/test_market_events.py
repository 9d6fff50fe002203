"""The market's event decoders against any log a ledger might serve: a log decodes into
its record, is another kind (None), or is refused as `MalformedEvent`, never a decoder's
own error; a well-formed log of each event decodes back to exactly what was logged."""

from __future__ import annotations

import contextlib
from typing import Final

import pytest
from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.chain import (
    LiquidityAdded,
    LiquidityRemoved,
    LogEntry,
    PoolCreated,
    Swapped,
    decode_exchange_event,
    decode_factory_event,
    load_artifact,
)
from m2mpay.chain.market_events import CreatedToken
from m2mpay.crypto import Address
from m2mpay.errors import MalformedEvent
from tests.fuzz.hostile import FUZZ

pytestmark = pytest.mark.timeout(60)

EMITTER: Final = Address(bytes([7]) * 20)
_EXCHANGE: Final = load_artifact("Exchange").interface
_FACTORY: Final = load_artifact("TokenFactory").interface
TOPICS: Final = [
    _EXCHANGE.event_topic(name)
    for name in ("PoolCreated", "Swapped", "LiquidityAdded", "LiquidityRemoved")
] + [_FACTORY.event_topic("TokenCreated")]

addresses = st.binary(min_size=20, max_size=20).map(Address)
uint256 = st.integers(min_value=0, max_value=2**256 - 1)
words = st.binary(min_size=32, max_size=32)
any_topic = st.one_of(st.sampled_from(TOPICS), words, st.binary(max_size=40))


def _log(topics: list[bytes], data: bytes) -> LogEntry:
    return LogEntry(EMITTER, tuple(topics), data, 5, bytes([9]) * 32, 2)


def _topic(address: Address) -> bytes:
    return bytes(12) + address


def _decodes_or_refuses(log: LogEntry) -> None:
    for decoder in (decode_exchange_event, decode_factory_event):
        with contextlib.suppress(MalformedEvent):  # refused cleanly; anything else fails
            decoder(log)


@FUZZ
@given(
    topics=st.lists(any_topic, max_size=5),
    data=st.one_of(st.binary(max_size=400), st.lists(words, max_size=8).map(b"".join)),
)
def test_any_log_decodes_is_another_kind_or_is_refused(topics: list[bytes], data: bytes) -> None:
    _decodes_or_refuses(_log(topics, data))


@FUZZ
@given(
    pool=words,
    trader=addresses,
    receiver=addresses,
    token_in=addresses,
    amounts=st.tuples(uint256, uint256, uint256, uint256),
    cut=st.integers(min_value=0, max_value=160),
)
def test_a_swap_decodes_to_what_was_logged_and_a_cut_one_is_refused(
    pool: bytes,
    trader: Address,
    receiver: Address,
    token_in: Address,
    amounts: tuple[int, int, int, int],
    cut: int,
) -> None:
    topics = [_EXCHANGE.event_topic("Swapped"), pool, _topic(trader), _topic(receiver)]
    data = encode(["address", "uint256", "uint256", "uint256", "uint256"], [token_in, *amounts])
    decoded = decode_exchange_event(_log(topics, data), EMITTER)
    assert decoded == Swapped(5, bytes([9]) * 32, 2, pool, trader, receiver, token_in, *amounts)
    assert decode_exchange_event(_log(topics, data), Address(bytes(20))) is None  # not its emitter
    if cut:
        with pytest.raises(MalformedEvent):
            decode_exchange_event(_log(topics, data[:-cut]))


@FUZZ
@given(
    pool=words,
    provider=addresses,
    values=st.tuples(uint256, uint256, uint256, uint256, uint256),
    added=st.booleans(),
)
def test_liquidity_changes_decode_to_what_was_logged(
    pool: bytes, provider: Address, values: tuple[int, int, int, int, int], added: bool
) -> None:
    kind = LiquidityAdded if added else LiquidityRemoved
    topics = [_EXCHANGE.event_topic(kind.__name__), pool, _topic(provider)]
    decoded = decode_exchange_event(_log(topics, encode(["uint256"] * 5, list(values))))
    assert decoded == kind(5, bytes([9]) * 32, 2, pool, provider, *values)


@FUZZ
@given(pool=words, token0=addresses, token1=addresses, dirty=st.binary(min_size=1, max_size=12))
def test_a_pool_decodes_and_an_address_topic_with_dirty_padding_is_refused(
    pool: bytes, token0: Address, token1: Address, dirty: bytes
) -> None:
    topics = [_EXCHANGE.event_topic("PoolCreated"), pool, _topic(token0), _topic(token1)]
    decoded = decode_exchange_event(_log(topics, b""))
    assert decoded == PoolCreated(5, bytes([9]) * 32, 2, pool, token0, token1)
    padded = dirty.rjust(12, b"\x00")
    if any(padded):
        with pytest.raises(MalformedEvent):
            decode_exchange_event(_log([*topics[:2], padded + token0, topics[3]], b""))


@FUZZ
@given(
    token=addresses,
    creator=addresses,
    name=st.text(max_size=64),
    symbol=st.text(max_size=32),
    decimals=st.integers(min_value=0, max_value=255),
    supply=uint256,
    holder=addresses,
    mint_owner=st.one_of(st.just(Address(bytes(20))), addresses),
    garbage=st.binary(min_size=1, max_size=4),
)
def test_a_created_token_decodes_and_a_name_that_is_not_utf8_is_refused(
    token: Address,
    creator: Address,
    name: str,
    symbol: str,
    decimals: int,
    supply: int,
    holder: Address,
    mint_owner: Address,
    garbage: bytes,
) -> None:
    topics = [_FACTORY.event_topic("TokenCreated"), _topic(token), _topic(creator)]
    types = ["string", "string", "uint8", "uint256", "address", "address"]
    data = encode(types, [name, symbol, decimals, supply, holder, mint_owner])
    decoded = decode_factory_event(_log(topics, data))
    owner = None if mint_owner == Address(bytes(20)) else mint_owner
    assert decoded == CreatedToken(
        token, creator, name, symbol, decimals, supply, holder, owner, 5, bytes([9]) * 32, 2
    )
    # `bytes` has the layout of `string`: a name that is not UTF-8.
    bad = encode(
        ["bytes", *types[1:]], [b"\xff" + garbage, symbol, decimals, supply, holder, mint_owner]
    )
    with pytest.raises(MalformedEvent):
        decode_factory_event(_log(topics, bad))
