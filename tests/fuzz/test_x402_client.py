"""A hostile x402 server: whatever its `PAYMENT-REQUIRED` (or `PAYMENT-RESPONSE`) header
holds, the paying client reads requirements or declines (`PaymentDeclined`), never
another exception; and a nearly right requirement is paid within the price or declined,
never signed above `max_price`."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from m2mpay.client.x402 import (
    OfferedPayment,
    PaymentDeclined,
    X402Payer,
    read_payment_required,
    read_payment_response,
)
from m2mpay.crypto import Address, PrivateKey
from tests.fuzz.hostile import FUZZ, json_nesting_bombs
from tests.fuzz.test_api_client import json_values, json_values_of

KEY = PrivateKey(bytes([0x44]) * 32)
MAX_PRICE = 1000
OFFER: dict[str, Any] = {
    "scheme": "exact",
    "network": "eip155:1337",
    "asset": Address(bytes([0x33]) * 20).checksum,
    "amount": "1000",
    "payTo": Address(bytes([0x22]) * 20).checksum,
    "maxTimeoutSeconds": 60,
    "extra": {"name": "M2M Token", "version": "1"},
}
REQUIRED = {"x402Version": 2, "resource": {"url": "http://x/data"}, "accepts": [OFFER]}


def _b64(raw: Any) -> str:
    return base64.b64encode(json.dumps(raw).encode()).decode()


def _declined(error: PaymentDeclined, *codes: str) -> None:
    assert error.code in codes


def _read(header: str) -> list[OfferedPayment]:
    try:
        return read_payment_required(header)[1]
    except PaymentDeclined as exc:
        _declined(exc, "malformed_requirements")
        return []


def _pay(offers: list[OfferedPayment]) -> None:
    payer = X402Payer(KEY, MAX_PRICE)
    try:
        offer = payer.choose(offers)
        header = payer.pay(offer, {"url": "http://x/data"})
    except PaymentDeclined as exc:
        _declined(exc, "no_payable_requirement", "too_expensive", "malformed_requirements")
        return
    assert offer.amount <= MAX_PRICE
    signed = json.loads(base64.b64decode(header))
    assert int(signed["payload"]["authorization"]["value"]) == offer.amount


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()))
def test_any_text_is_requirements_or_declined(header: str) -> None:
    _pay(_read(header))
    try:
        read_payment_response(header)
    except PaymentDeclined as exc:
        _declined(exc, "malformed_requirements")


@FUZZ
@given(json_values)
def test_any_json_is_requirements_or_declined(value: Any) -> None:
    _pay(_read(_b64(value)))


@FUZZ
@given(
    st.fixed_dictionaries(json_values_of(REQUIRED)),
    st.fixed_dictionaries(json_values_of(OFFER)),
    st.fixed_dictionaries(json_values_of(OFFER["extra"])),
)
def test_a_nearly_right_requirement_is_paid_within_the_price_or_declined(
    required: dict[str, Any], offer: dict[str, Any], extra: dict[str, Any]
) -> None:
    for raw in (
        required,
        {**REQUIRED, "accepts": [offer]},
        {**REQUIRED, "accepts": [{**OFFER, "extra": extra}]},
    ):
        _pay(_read(_b64(raw)))


def test_a_nesting_bomb_is_declined() -> None:
    for bomb in json_nesting_bombs(depth=4_000):
        assert _read(base64.b64encode(bomb).decode()[:8000]) == []
