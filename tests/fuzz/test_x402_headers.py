"""A hostile x402 client: whatever its `PAYMENT-SIGNATURE` header holds (any text, any
base64, any JSON, a nearly right payment, a nesting bomb), the paywall's reader answers
a payment or `PaymentRefused` with a reason, never another exception; and `check_exact`
refuses, never crashes, on any payload that got past the reader."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from m2mpay.access.x402_wire import (
    PaymentPayload,
    PaymentRefused,
    PaymentRequirements,
    check_exact,
    decode_header,
)
from m2mpay.crypto import Address, Eip712Domain
from tests.fuzz.hostile import FUZZ, json_nesting_bombs
from tests.fuzz.test_api_client import json_values, json_values_of

TOKEN = Address(bytes([0x33]) * 20)
DOMAIN = Eip712Domain("M2M Token", "1", 1337, TOKEN)
OFFERED = PaymentRequirements(
    scheme="exact",
    network="eip155:1337",
    asset=TOKEN.checksum,
    amount="1000",
    pay_to=Address(bytes([0x22]) * 20).checksum,
    max_timeout_seconds=60,
)
AUTHORIZATION = {
    "from": Address(bytes([0x11]) * 20).checksum,
    "to": OFFERED.pay_to,
    "value": "1000",
    "validAfter": "0",
    "validBefore": "99999999999",
    "nonce": "0x" + "07" * 32,
}
SIGNED = {"signature": "0x" + "1b" * 65, "authorization": AUTHORIZATION}
NEARLY = {"x402Version": 2, "accepted": OFFERED.model_dump(by_alias=True), "payload": SIGNED}


def _b64(raw: Any) -> str:
    return base64.b64encode(json.dumps(raw).encode()).decode()


def _read(header: str) -> PaymentPayload | None:
    refused: PaymentRefused | None = None
    try:
        return decode_header(header, PaymentPayload)
    except PaymentRefused as exc:
        refused = exc
    assert refused.code in {"invalid_payload", "invalid_x402_version"}
    return None


def _check(payment: PaymentPayload) -> None:
    refused: PaymentRefused | None = None
    try:
        check_exact(OFFERED, payment, DOMAIN, 1_767_225_600)
    except PaymentRefused as exc:
        refused = exc
    assert refused is None or refused.code


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()))
def test_any_text_is_a_payment_or_refused(header: str) -> None:
    _read(header)


@FUZZ
@given(json_values)
def test_any_json_is_a_payment_or_refused(value: Any) -> None:
    _read(_b64(value))


@FUZZ
@given(
    st.fixed_dictionaries(json_values_of(NEARLY)),
    st.fixed_dictionaries(json_values_of(AUTHORIZATION)),
    st.fixed_dictionaries(json_values_of(OFFERED.model_dump(by_alias=True))),
)
def test_a_nearly_right_payment_is_read_and_checked_or_refused(
    payment: dict[str, Any], authorization: dict[str, Any], accepted: dict[str, Any]
) -> None:
    other_authorization = {**NEARLY, "payload": {**SIGNED, "authorization": authorization}}
    for raw in (payment, {**NEARLY, "accepted": accepted}, other_authorization):
        read = _read(_b64(raw))
        if read is not None:
            _check(read)


def test_a_nesting_bomb_is_refused() -> None:
    for bomb in json_nesting_bombs(depth=4_000):
        assert _read(base64.b64encode(bomb).decode()[:8000]) is None
