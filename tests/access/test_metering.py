"""Metered HTTP through the `Paywall`: whatever the app sends and whenever payments
arrive, the seller never serves more than the payments it holds durably plus the
credit window (a property over random streams and payment schedules), pauses while
payments lag and ends the response when they stop. The scheme and its credit are
doubles here (tests/access/test_channel_scheme.py meters a real channel)."""

from __future__ import annotations

import base64
import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.access.metering import StreamMeter
from m2mpay.access.paywall import Paywall
from m2mpay.access.pricing import Per, Price, PriceList, Purchase
from m2mpay.access.schemes import Verified
from m2mpay.access.x402_wire import (
    PaymentPayload,
    PaymentRequirements,
    ResourceInfo,
    SettleResponse,
)
from m2mpay.crypto import Address

ASSET = Address("0x" + "11" * 20)
SELLER = Address("0x" + "22" * 20)
PER_SECOND = 1_000
WINDOW_S = 1


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Schedule:
    """Payments made durable at given times; asking for them lets time pass (a poll)."""

    clock: Clock
    arrivals: list[tuple[float, int]]
    poll_s: float = 0.05
    asked: int = 0
    opening: int = PER_SECOND  # the payment that opened the response

    async def credit(self) -> int:
        self.asked += 1
        self.clock.now += self.poll_s
        return self.opening + sum(amount for at, amount in self.arrivals if at <= self.clock.now)


@dataclass
class MeteredDouble:
    """A scheme whose every payment is good and whose credit follows `schedule`."""

    schedule: Schedule
    opening: int

    @property
    def name(self) -> str:
        return "batch-settlement"

    def requirements(self, resource: ResourceInfo, purchase: Purchase) -> PaymentRequirements:
        return PaymentRequirements(
            scheme=self.name,
            network="eip155:1",
            asset=ASSET.checksum,
            amount=str(purchase.amount),
            pay_to=SELLER.checksum,
            max_timeout_seconds=60,
        )

    async def verify(self, payment: PaymentPayload, requirements: PaymentRequirements) -> Verified:
        return Verified(SELLER, self.opening, requirements, "", None)

    async def settle(self, verified: Verified) -> SettleResponse:
        return SettleResponse(success=True, transaction="0x01:1", network="eip155:1")

    def meter(self, verified: Verified) -> Schedule:
        return self.schedule


@dataclass
class Stream:
    """An app that sends a chunk every `steps_ms[i]` of the clock, for as long as let."""

    clock: Clock
    steps_ms: list[int]
    sent: list[float] = field(default_factory=list)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for step in self.steps_ms:
            self.clock.now += step / 1000
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            self.sent.append(self.clock.now)
        await send({"type": "http.response.body", "body": b""})


def _payment() -> bytes:
    accepted = {
        "scheme": "batch-settlement",
        "network": "eip155:1",
        "asset": ASSET.checksum,
        "amount": str(PER_SECOND),
        "payTo": SELLER.checksum,
        "maxTimeoutSeconds": 60,
    }
    found = {"x402Version": 2, "accepted": accepted, "payload": {}}
    return base64.b64encode(json.dumps(found).encode())


async def _run(
    steps_ms: list[int], arrivals: list[tuple[float, int]], pause_limit_s: float
) -> tuple[list[bytes], list[tuple[float, int]], Paywall, Stream, Schedule]:
    clock = Clock()
    schedule = Schedule(clock, arrivals)
    scheme = MeteredDouble(schedule, PER_SECOND)
    app = Stream(clock, steps_ms)
    prices = PriceList.everything(Price(PER_SECOND, ASSET, Per.SECOND, seconds=1))
    paywall = Paywall(
        app,
        prices,
        [scheme],
        credit_window_s=WINDOW_S,
        pause_limit_s=pause_limit_s,
        credit_poll_s=0,  # the schedule's clock moves as it is asked
        clock=clock,
    )
    served: list[bytes] = []
    # What the seller held, when, each time a chunk left: (served ms, durable credit).
    held: list[tuple[float, int]] = []
    scope = {
        "type": "http",
        "path": "/live",
        "method": "GET",
        "headers": [(b"host", b"seller.test"), (b"payment-signature", _payment())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            served.append(message["body"])
            durable = PER_SECOND + sum(a for at, a in arrivals if at <= clock.now)
            held.append((clock.now, durable))

    await paywall(scope, receive, send)
    return served, held, paywall, app, schedule


@settings(max_examples=200, deadline=None)
@given(
    steps_ms=st.lists(st.integers(1, 400), min_size=5, max_size=80),
    arrivals=st.lists(
        st.tuples(st.floats(0, 20, allow_nan=False), st.integers(1, 3 * PER_SECOND)), max_size=10
    ),
)
async def test_the_seller_never_serves_more_than_it_holds_plus_the_window(
    steps_ms: list[int], arrivals: list[tuple[float, int]]
) -> None:
    served, held, _, _, _ = await _run(steps_ms, arrivals, pause_limit_s=2.0)
    assert len(served) == len(held) <= len(steps_ms)
    # Each chunk stands for the app's time up to it (pauses are not the app's time):
    # when it left, that time's price was within what the seller held plus the window.
    for sent, (_, durable) in enumerate(held, start=1):
        assert _owed_after(steps_ms[:sent]) <= durable + PER_SECOND * WINDOW_S


def _owed_after(steps_ms: list[int]) -> int:
    """What the chunks sent cost at most: one per-second price per 1000 ms of steps."""
    return -(-sum(steps_ms) * PER_SECOND // 1000)


async def test_a_stream_whose_payments_stop_is_paused_and_then_ended() -> None:
    served, _, _, _, schedule = await _run([100] * 100, [], pause_limit_s=1.0)
    # 1 s bought plus a 1 s window, at a chunk a tenth of a second: 20 chunks, no more.
    assert len(served) == 20
    assert schedule.asked > 1  # it paused and asked for credit before ending


async def test_a_stream_goes_on_while_payments_keep_coming() -> None:
    arrivals = [(float(second), PER_SECOND) for second in range(1, 8)]
    served, held, _, _, _ = await _run([100] * 50, arrivals, pause_limit_s=1.0)
    assert len(served) == 50
    assert all(durable >= PER_SECOND for _, durable in held)


async def test_a_meter_pauses_until_credit_arrives_and_does_not_charge_the_pause() -> None:
    clock = Clock()
    schedule = Schedule(clock, [(5.0, PER_SECOND)], poll_s=0.5)
    meter = StreamMeter(PER_SECOND, 0, schedule, PER_SECOND, clock=clock, poll_s=0)
    clock.now = 1.0
    assert await meter.admit()
    clock.now = 1.5  # half a second beyond what is paid: pause until the payment at 5 s
    assert await meter.admit()
    assert clock.now >= 5.0
    assert meter.served_ms == 1500  # the pause was not served
    assert meter.owed <= meter.credit
