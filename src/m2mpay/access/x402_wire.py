"""x402 version 2 on the wire: what a paywall answers and what a client pays with.

A request without payment gets 402 with a `PAYMENT-REQUIRED` header (`PaymentRequired`:
the resource and the requirements it `accepts`); the client retries with a
`PAYMENT-SIGNATURE` header (`PaymentPayload`: the requirements it chose and the
scheme's payload); a paid answer carries `PAYMENT-RESPONSE` (`SettleResponse`). Each
header is base64 of a JSON object whose keys are camelCase; networks are CAIP-2 ids
and amounts integer strings in the asset's smallest unit.

Everything a client sends is read here with bounds (header size, base64, JSON, the
fields' forms) and refused as `PaymentRefused` with the reason x402 names
(`invalid_payload`, `invalid_x402_version`, …), never another exception. The `exact`
scheme on EVM pays with an EIP-3009 authorization (`ExactEvmPayload`); `check_exact`
holds it against the requirements offline (payee, value, validity, signer); the chain's
part (nonce unused, balance) is the facilitator's.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from m2mpay.crypto import Address, Eip712Domain, Signature, TransferAuthorization
from m2mpay.crypto.signature import recover_signer
from m2mpay.errors import CodedError, CryptoError

__all__ = [
    "MAX_HEADER_BYTES",
    "PAYMENT_REQUIRED",
    "PAYMENT_RESPONSE",
    "PAYMENT_SIGNATURE",
    "X402_VERSION",
    "ExactEvmAuthorization",
    "ExactEvmPayload",
    "PaymentPayload",
    "PaymentRefused",
    "PaymentRequired",
    "PaymentRequirements",
    "ResourceInfo",
    "SettleResponse",
    "check_exact",
    "decode_header",
    "encode_header",
]

X402_VERSION: Final = 2
PAYMENT_REQUIRED: Final = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE: Final = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE: Final = "PAYMENT-RESPONSE"
# Larger than any payload of ours or x402's EVM schemes (~1 kB), small enough that a
# hostile header costs nothing to refuse; servers cap all headers at 8-16 kB anyway.
MAX_HEADER_BYTES: Final = 8192
_MAX_JSON_DEPTH: Final = 8

IntString = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,77})$")]
Caip2 = Annotated[str, Field(pattern=r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$")]
HexAddress = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]
Hex32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]


class PaymentRefused(CodedError):
    """A payment (or its header) is not accepted; `code` is x402's reason."""


class _Wire(BaseModel):
    """camelCase on the wire, snake_case here; unknown keys ignored (extensions grow)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )


class ResourceInfo(_Wire):
    url: Annotated[str, Field(max_length=2048)]
    description: Annotated[str, Field(max_length=1024)] | None = None
    mime_type: Annotated[str, Field(max_length=128)] | None = None


class PaymentRequirements(_Wire):
    """One way to pay: a scheme on a network, an amount of an asset to `pay_to`."""

    scheme: Annotated[str, Field(pattern=r"^[a-z0-9][-a-z0-9]{0,31}$")]
    network: Caip2
    asset: HexAddress
    amount: IntString
    pay_to: HexAddress
    max_timeout_seconds: Annotated[int, Field(ge=1, le=86_400)]
    extra: dict[str, Any] = Field(default_factory=dict)


class PaymentRequired(_Wire):
    x402_version: int = X402_VERSION
    error: Annotated[str, Field(max_length=256)] | None = None
    resource: ResourceInfo | None = None
    accepts: Annotated[list[PaymentRequirements], Field(max_length=16)]
    extensions: dict[str, Any] | None = None


class PaymentPayload(_Wire):
    x402_version: int
    accepted: PaymentRequirements
    payload: dict[str, Any]
    resource: ResourceInfo | None = None
    extensions: dict[str, Any] | None = None


class SettleResponse(_Wire):
    success: bool
    transaction: Annotated[str, Field(max_length=256)]
    network: Caip2
    payer: HexAddress | None = None
    amount: IntString | None = None
    error_reason: Annotated[str, Field(max_length=128)] | None = None


class ExactEvmAuthorization(_Wire):
    """EIP-3009's fields, as x402's `exact` scheme on EVM names them."""

    from_: Annotated[HexAddress, Field(alias="from")]
    to: HexAddress
    value: IntString
    valid_after: IntString
    valid_before: IntString
    nonce: Hex32


class ExactEvmPayload(_Wire):
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")]
    authorization: ExactEvmAuthorization

    def transfer(self) -> TransferAuthorization:
        auth = self.authorization
        try:
            return TransferAuthorization(
                _address(auth.from_),
                _address(auth.to),
                int(auth.value),
                int(auth.valid_after),
                int(auth.valid_before),
                bytes.fromhex(auth.nonce[2:]),
            )
        except ValueError as exc:  # 78 digits can pass 2**256
            raise PaymentRefused("invalid_payload", str(exc)) from None


_Model = TypeVar("_Model", bound=_Wire)


def encode_header(message: _Wire) -> str:
    """A header's value: base64 of the message's JSON (camelCase, no nulls)."""
    body = message.model_dump_json(by_alias=True, exclude_none=True)
    return base64.b64encode(body.encode()).decode("ascii")


def decode_header(text: str, model: type[_Model]) -> _Model:
    """Read a header's value as `model`, or refuse it with x402's reason."""
    if len(text) > MAX_HEADER_BYTES:
        raise PaymentRefused("invalid_payload", f"the header is over {MAX_HEADER_BYTES} bytes")
    try:
        raw = base64.b64decode(text.strip().encode("ascii"), validate=True)
        found = json.loads(raw)
    except (UnicodeError, binascii.Error, ValueError, RecursionError):
        raise PaymentRefused("invalid_payload", "the header is not base64 of JSON") from None
    if not isinstance(found, dict) or _depth(found) > _MAX_JSON_DEPTH:
        raise PaymentRefused("invalid_payload", "the header is not a JSON object of our shape")
    if "x402_version" in model.model_fields and found.get("x402Version") != X402_VERSION:
        raise PaymentRefused(
            "invalid_x402_version", f"x402 version {found.get('x402Version')!r}, not 2"
        )
    try:
        return model.model_validate(found)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise PaymentRefused("invalid_payload", f"{where}: {exc.errors()[0]['msg']}") from None


def check_exact(
    requirements: PaymentRequirements,
    payment: PaymentPayload,
    token_domain: Eip712Domain,
    now: int,
) -> tuple[TransferAuthorization, Signature]:
    """The `exact` EVM payment's authorization and signature, once they answer
    `requirements` (the ones the server offered, not the client's copy) at unix time
    `now`: same scheme, network and asset, the whole amount to the payee, valid now and
    for the settlement to come, signed by its sender in the token's EIP-712 domain."""
    chosen = payment.accepted
    if chosen.scheme != requirements.scheme:
        raise PaymentRefused("unsupported_scheme", f"scheme {chosen.scheme!r} was not offered")
    if (chosen.network, _address(chosen.asset)) != (
        requirements.network,
        _address(requirements.asset),
    ):
        raise PaymentRefused("network_mismatch", "another network or asset than offered")
    try:
        payload = ExactEvmPayload.model_validate(payment.payload)
    except ValidationError:
        raise PaymentRefused("invalid_payload", "not an exact EVM payload") from None
    authorization = payload.transfer()
    if authorization.receiver != _address(requirements.pay_to):
        raise PaymentRefused(
            "invalid_exact_evm_payload_recipient_mismatch", "the payment is to another payee"
        )
    if authorization.value != int(requirements.amount):
        raise PaymentRefused(
            "invalid_exact_evm_payload_authorization_value_mismatch",
            f"the authorization moves {authorization.value}, the price is {requirements.amount}",
        )
    if authorization.valid_after >= now:
        raise PaymentRefused("invalid_exact_evm_payload_authorization_valid_after", "not valid yet")
    # Valid long enough for the settlement to land: a block or two after now.
    if authorization.valid_before <= now + 6:
        raise PaymentRefused(
            "invalid_exact_evm_payload_authorization_valid_before", "expired or about to"
        )
    try:
        signature = Signature(payload.signature)
        signer = recover_signer(authorization.digest(token_domain), signature)
    except CryptoError as exc:
        raise PaymentRefused("invalid_exact_evm_payload_signature", str(exc)) from None
    if signer != authorization.sender:
        raise PaymentRefused(
            "invalid_exact_evm_payload_signature", "not signed by the authorization's sender"
        )
    return authorization, signature


def _address(text: str) -> Address:
    try:
        return Address(text)
    except CryptoError as exc:  # a mixed-case address whose checksum is wrong
        raise PaymentRefused("invalid_payload", str(exc)) from None


def _depth(value: Any, level: int = 1) -> int:
    if level > _MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level
