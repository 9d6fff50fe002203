"""The SDK's escrow calls reading a hostile node's answers: every answer becomes an
`EscrowView`, `MalformedMessage` or an `ApiRefusal`, never another exception, and
nesting bombs are malformed (the node is an httpx `MockTransport`, as in
`test_api_client.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.client import EscrowView
from m2mpay.errors import ApiRefusal, MalformedMessage
from tests.fuzz.hostile import FUZZ, json_nesting_bombs
from tests.fuzz.test_api_client import (
    CHANNEL,
    _node,
    json_values,
    json_values_of,
    values_or_refusals,
)

pytestmark = pytest.mark.timeout(60)

ADDRESS: Final = "0x" + "ab" * 20
ESCROW_ANSWER: Final = {
    "escrow_id": CHANNEL,
    "state": "claimed",
    "role": "seller",
    "buyer": ADDRESS,
    "seller": ADDRESS,
    "meter": ADDRESS,
    "asset": ADDRESS,
    "price": "10",
    "deposit": "100",
    "max_reading": "10",
    "deadline": 1,
    "nonce": "7",
    "actions": ["claim"],
    "outcome": {"reading": "3", "paid": "30", "refunded": "70", "tx_hash": CHANNEL, "block": 2},
}
NEAR_ESCROW: Final = st.fixed_dictionaries({}, optional=json_values_of(ESCROW_ANSWER))


def _read_escrows(answer: Callable[[httpx.Request], httpx.Response]) -> list[Any]:
    async def ask() -> list[Any]:
        async with _node(answer) as client:
            results: list[Any] = []
            for call in (
                client.escrows,
                lambda: client.escrow(CHANNEL),
                lambda: client.open_escrow(ADDRESS, ADDRESS, price=1, deposit=1, timeout_s=1),
                lambda: client.claim_escrow(CHANNEL, 1, "0x" + "11" * 65),
                lambda: client.refund_escrow(CHANNEL),
            ):
                try:
                    results.append(await call())
                except (MalformedMessage, ApiRefusal) as refusal:
                    results.append(refusal)
            return results

    return asyncio.run(ask())


def test_the_answer_the_node_gives_is_read() -> None:
    body = orjson.dumps(ESCROW_ANSWER)
    listed, *single = _read_escrows(
        lambda request: httpx.Response(
            200,
            content=orjson.dumps({"escrows": [ESCROW_ANSWER]})
            if request.url.path == "/v1/escrows" and request.method == "GET"
            else body,
        )
    )
    assert [e.outcome.paid for e in listed] == [30]
    assert all(isinstance(e, EscrowView) and e.actions == ("claim",) for e in single)


@given(
    value=json_values | NEAR_ESCROW | NEAR_ESCROW.map(lambda near: {"escrows": [near]}),
    status=st.sampled_from([200, 201, 404, 409, 422, 503]),
)
@FUZZ
def test_any_answer_to_the_escrow_calls_gives_a_value_or_a_typed_error(
    value: Any, status: int
) -> None:
    values_or_refusals(_read_escrows, status, orjson.dumps(value))


@pytest.mark.parametrize(
    "bomb", json_nesting_bombs(), ids=["lists", "objects", "open-lists", "open-objects"]
)
def test_nesting_bombs_in_an_escrow_answer_are_malformed(bomb: bytes) -> None:
    results = _read_escrows(lambda _: httpx.Response(200, content=bomb))
    assert all(isinstance(result, MalformedMessage) for result in results), results
