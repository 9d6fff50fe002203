"""x402 v2 headers: what a paywall writes reads back the same; a client's payment is read
with bounds and refused with x402's reasons; an `exact` EVM payment that `check_exact`
accepts is one the token contract settles."""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from m2mpay.access.x402_wire import (
    MAX_HEADER_BYTES,
    PaymentPayload,
    PaymentRefused,
    PaymentRequired,
    PaymentRequirements,
    ResourceInfo,
    SettleResponse,
    check_exact,
    decode_header,
    encode_header,
)
from m2mpay.crypto import Address, Eip712Domain, PrivateKey, TransferAuthorization
from tests.conftest import World

NOW = 1_767_225_600
PAYER = PrivateKey.generate()
PAYEE = Address(bytes([0x22]) * 20)
TOKEN = Address(bytes([0x33]) * 20)
DOMAIN = Eip712Domain("M2M Token", "1", 1337, TOKEN)


def _requirements(**changes: object) -> PaymentRequirements:
    fields: dict[str, object] = {
        "scheme": "exact",
        "network": "eip155:1337",
        "asset": TOKEN.checksum,
        "amount": "1000",
        "pay_to": PAYEE.checksum,
        "max_timeout_seconds": 60,
        "extra": {"name": "M2M Token", "version": "1"},
    }
    return PaymentRequirements.model_validate({**fields, **changes})


def _payment(
    requirements: PaymentRequirements,
    *,
    signer: PrivateKey = PAYER,
    domain: Eip712Domain = DOMAIN,
    **changes: object,
) -> PaymentPayload:
    fields: dict[str, object] = {
        "receiver": Address(requirements.pay_to),
        "value": int(requirements.amount),
        "valid_after": 0,
        "valid_before": NOW + 60,
    }
    fields.update(changes)
    authorization = TransferAuthorization(
        PAYER.address,
        fields["receiver"],  # type: ignore[arg-type]
        fields["value"],  # type: ignore[arg-type]
        fields["valid_after"],  # type: ignore[arg-type]
        fields["valid_before"],  # type: ignore[arg-type]
        secrets.token_bytes(32),
    )
    signature = signer.sign_digest(authorization.digest(domain))
    return PaymentPayload.model_validate(
        {
            "x402Version": 2,
            "accepted": requirements.model_dump(by_alias=True),
            "payload": {
                "signature": "0x" + signature.hex(),
                "authorization": {
                    "from": authorization.sender.checksum,
                    "to": authorization.receiver.checksum,
                    "value": str(authorization.value),
                    "validAfter": str(authorization.valid_after),
                    "validBefore": str(authorization.valid_before),
                    "nonce": "0x" + authorization.nonce.hex(),
                },
            },
        }
    )


def _header(raw: object) -> str:
    return base64.b64encode(json.dumps(raw).encode()).decode()


def test_what_a_paywall_writes_reads_back_in_x402s_camel_case() -> None:
    required = PaymentRequired(
        resource=ResourceInfo(url="http://node/v1/data", mime_type="application/json"),
        accepts=[_requirements()],
    )
    header = encode_header(required)
    raw = json.loads(base64.b64decode(header))
    assert raw["x402Version"] == 2
    assert raw["accepts"][0]["payTo"] == PAYEE.checksum
    assert raw["accepts"][0]["maxTimeoutSeconds"] == 60
    assert raw["resource"] == {"url": "http://node/v1/data", "mimeType": "application/json"}
    assert decode_header(header, PaymentRequired) == required
    settled = SettleResponse(success=True, transaction="0x" + "ab" * 32, network="eip155:1337")
    assert decode_header(encode_header(settled), SettleResponse) == settled


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("not base64!", "invalid_payload"),
        (base64.b64encode(b"{not json").decode(), "invalid_payload"),
        (_header([1, 2]), "invalid_payload"),
        (_header({"x402Version": 1, "accepted": {}, "payload": {}}), "invalid_x402_version"),
        (_header({"x402Version": 2, "payload": {}}), "invalid_payload"),
        (_header({"x402Version": 2, "a": [[[[[[[[[[1]]]]]]]]]]}), "invalid_payload"),
        ("A" * (MAX_HEADER_BYTES + 4), "invalid_payload"),
        (base64.b64encode(b"[" * 5000 + b"]" * 5000).decode()[:8000], "invalid_payload"),
    ],
)
def test_a_bad_payment_header_is_refused_with_x402s_reason(header: str, code: str) -> None:
    with pytest.raises(PaymentRefused) as refused:
        decode_header(header, PaymentPayload)
    assert refused.value.code == code


def test_an_amount_that_is_not_an_integer_string_is_refused() -> None:
    payment = _payment(_requirements()).model_dump(by_alias=True)
    for amount in ("1e3", "-1", "01", "1" * 79, " 1"):
        payment["accepted"]["amount"] = amount
        with pytest.raises(PaymentRefused, match="amount"):
            decode_header(_header(payment), PaymentPayload)


def test_an_exact_payment_that_answers_the_offer_is_accepted() -> None:
    offered = _requirements()
    header = encode_header(_payment(offered))
    authorization, signature = check_exact(
        offered, decode_header(header, PaymentPayload), DOMAIN, NOW
    )
    assert (authorization.sender, authorization.receiver) == (PAYER.address, PAYEE)
    assert authorization.value == 1000
    assert len(signature) == 65


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"receiver": Address(bytes([0x44]) * 20)}, "invalid_exact_evm_payload_recipient_mismatch"),
        ({"value": 999}, "invalid_exact_evm_payload_authorization_value_mismatch"),
        ({"value": 1001}, "invalid_exact_evm_payload_authorization_value_mismatch"),
        ({"valid_after": NOW + 5}, "invalid_exact_evm_payload_authorization_valid_after"),
        ({"valid_before": NOW}, "invalid_exact_evm_payload_authorization_valid_before"),
        ({"signer": PrivateKey.generate()}, "invalid_exact_evm_payload_signature"),
        (
            {"domain": Eip712Domain("M2M Token", "1", 1, TOKEN)},  # signed for another chain
            "invalid_exact_evm_payload_signature",
        ),
    ],
)
def test_an_exact_payment_that_does_not_answer_it_is_refused(
    changes: dict[str, object], code: str
) -> None:
    offered = _requirements()
    with pytest.raises(PaymentRefused) as refused:
        check_exact(offered, _payment(offered, **changes), DOMAIN, NOW)  # type: ignore[arg-type]
    assert refused.value.code == code


def test_a_value_beyond_uint256_is_refused_as_a_bad_payload() -> None:
    offered = _requirements()
    payment = _payment(offered).model_dump(by_alias=True)
    payment["payload"]["authorization"]["validBefore"] = "9" * 78
    with pytest.raises(PaymentRefused) as refused:
        check_exact(offered, decode_header(_header(payment), PaymentPayload), DOMAIN, NOW)
    assert refused.value.code == "invalid_payload"


def test_a_payment_for_another_offer_is_refused() -> None:
    offered = _requirements()
    cheaper = _requirements(amount="1")  # the client's own copy, with its own price
    with pytest.raises(PaymentRefused) as refused:
        check_exact(offered, _payment(cheaper), DOMAIN, NOW)
    assert refused.value.code == "invalid_exact_evm_payload_authorization_value_mismatch"
    elsewhere = _requirements(network="eip155:8453")
    with pytest.raises(PaymentRefused) as refused:
        check_exact(offered, _payment(elsewhere), DOMAIN, NOW)
    assert refused.value.code == "network_mismatch"
    upto = _requirements(scheme="upto")
    with pytest.raises(PaymentRefused) as refused:
        check_exact(offered, _payment(upto), DOMAIN, NOW)
    assert refused.value.code == "unsupported_scheme"


async def test_an_accepted_exact_payment_is_one_the_token_settles(world: World) -> None:
    token = world.token
    now = await world.ledger.block_timestamp()
    offered = _requirements(
        network=world.ledger.caip2,
        asset=token.address.checksum,
        pay_to=world.carol.address.checksum,
    )
    authorization = TransferAuthorization(
        world.alice.address, world.carol.address, 1000, 0, now + 600, secrets.token_bytes(32)
    )
    signature = await token.sign_authorization(world.alice, authorization)
    payment = PaymentPayload(
        x402_version=2,
        accepted=offered,
        payload={
            "signature": "0x" + signature.hex(),
            "authorization": {
                "from": world.alice.address.checksum,
                "to": world.carol.address.checksum,
                "value": "1000",
                "validAfter": "0",
                "validBefore": str(now + 600),
                "nonce": "0x" + authorization.nonce.hex(),
            },
        },
    )
    read = decode_header(encode_header(payment), PaymentPayload)
    checked, signed = check_exact(offered, read, await token.domain(), now)
    before = await token.balance_of(world.carol.address)
    await token.transfer_with_authorization(world.bob, checked, signed)
    assert await token.balance_of(world.carol.address) == before + 1000
