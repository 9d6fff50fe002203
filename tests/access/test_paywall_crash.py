"""A paywall that dies between recording an `exact` payment and marking it settled: at
its next start the book is reconciled with the token's `authorizationState`, so the
payer is never charged twice and the request never served twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from m2mpay.access.exact import Reconciled
from m2mpay.client.x402 import read_payment_required
from tests.access.paywall_rig import PRICE, Rig, paywall_rig


class Killed(Exception):
    """The process dies here: nothing after this line of the paywall runs."""


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with paywall_rig(tmp_path) as made:
        yield made


async def _payment(rig: Rig) -> str:
    async with rig.client() as http:
        answer = await http.get("/data")
    resource, [offer] = read_payment_required(answer.headers["PAYMENT-REQUIRED"])
    return rig.payer().pay(offer, resource)


async def _get(rig: Rig, header: str) -> int:
    async with rig.client() as http:
        answer = await http.get("/data", headers={"PAYMENT-SIGNATURE": header})
    return answer.status_code


async def test_killed_before_the_send_nothing_is_charged_and_the_payment_still_works(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await rig.balances()
    header = await _payment(rig)

    async def dies(*_: Any) -> None:
        raise Killed

    monkeypatch.setattr(rig.token, "transfer_with_authorization", dies)
    assert await _get(rig, header) == 500
    assert await rig.scheme._book.unsettled()  # recorded, durably, before the send
    assert await rig.restart() == Reconciled(settled=0, forgotten=1)
    assert await rig.balances() == before
    # The upstream was asked (settling waits for its answer) but its answer was dropped.
    assert rig.upstream.gets() == ["GET /data"]
    # Nothing was charged, so the same authorization pays once, and only once: the
    # replay is refused before the upstream is asked.
    assert await _get(rig, header) == 200
    assert await _get(rig, header) == 402
    assert await rig.balances() == (before[0] + PRICE, before[1] - PRICE)
    assert rig.upstream.gets() == ["GET /data"] * 2


async def test_killed_after_the_send_it_is_charged_once_and_never_served_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await rig.balances()
    header = await _payment(rig)
    send = rig.token.transfer_with_authorization

    async def sends_then_dies(*args: Any) -> None:
        await send(*args)
        raise Killed

    monkeypatch.setattr(rig.token, "transfer_with_authorization", sends_then_dies)
    assert await _get(rig, header) == 500
    assert await rig.restart() == Reconciled(settled=1, forgotten=0)
    # The transfer landed once; the payment is settled in the book and never accepted again.
    assert await _get(rig, header) == 402
    assert await rig.balances() == (before[0] + PRICE, before[1] - PRICE)
    assert rig.upstream.gets() == ["GET /data"]  # asked before settling, never again
    assert await rig.restart() == Reconciled(settled=0, forgotten=0)
