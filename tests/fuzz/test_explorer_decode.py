"""The explorer's decoders against any call and any log a ledger might serve: each reads
as a decoded call or event, or raw with its name None, never an error; decoding changes
nothing and gives the same view twice; the raw parts always come through unchanged."""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.chain import Deployment, LogEntry, MarketContracts, load_artifact
from m2mpay.crypto import Address
from m2mpay.explorer import KnownContracts, decode_call, decode_log
from m2mpay.explorer.decode import ARTIFACTS
from tests.fuzz.hostile import FUZZ

pytestmark = pytest.mark.timeout(120)


def _address(n: int) -> Address:
    return Address(bytes([n]) * 20)


DEPLOYMENT: Final = Deployment(
    1337,
    hub=_address(1),
    token=_address(2),
    token_symbol="M2M",
    deployer=_address(3),
    block_number=9,
    gas_used=1,
    anchor=_address(4),
    market=MarketContracts(_address(5), _address(6), _address(7), _address(8)),
)
KNOWN: Final = KnownContracts.of(DEPLOYMENT, [_address(9)])
STRANGER: Final = _address(0x42)
EMITTERS: Final = [*KNOWN.by_address, STRANGER]
TOPICS: Final = sorted(
    {topic for name in ARTIFACTS for topic in load_artifact(name).interface.event_topics}
)
SELECTORS: Final = sorted(
    {selector for name in ARTIFACTS for selector in load_artifact(name).interface.selectors}
)
words = st.binary(min_size=32, max_size=32)
data = st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(words, st.sampled_from([bytes(32), (2**256 - 1).to_bytes(32, "big")]))).map(
        b"".join
    ),
    st.lists(st.integers(0, 2**16).map(lambda n: n.to_bytes(32, "big")), max_size=12).map(b"".join),
)


@FUZZ
@given(
    emitter=st.sampled_from(EMITTERS),
    topics=st.lists(st.one_of(st.sampled_from(TOPICS), words, st.binary(max_size=40)), max_size=5),
    payload=data,
)
def test_any_log_reads_as_an_event_or_raw_never_an_error(
    emitter: Address, topics: list[bytes], payload: bytes
) -> None:
    log = LogEntry(emitter, tuple(topics), payload, 5, bytes([9]) * 32, 2)
    view = decode_log(log, KNOWN)
    assert view == decode_log(log, KNOWN)
    assert (view.address, view.topics, view.data, view.log_index) == (
        emitter,
        log.topics,
        payload,
        2,
    )
    assert view.contract == KNOWN.name_of(emitter)
    if view.event is None:
        assert view.args == {}


@FUZZ
@given(
    to=st.one_of(st.none(), st.sampled_from(EMITTERS)),
    selector=st.one_of(st.sampled_from(SELECTORS), st.binary(max_size=4)),
    payload=data,
)
def test_any_call_reads_as_a_function_or_raw_never_an_error(
    to: Address | None, selector: bytes, payload: bytes
) -> None:
    view = decode_call(to, selector + payload, KNOWN)
    assert view == decode_call(to, selector + payload, KNOWN)
    assert view.contract == (KNOWN.name_of(to) if to is not None else None)
    if view.function is None:
        assert view.args == {}
