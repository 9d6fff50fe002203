"""Paying HTTP 402 answers the x402 (v2) way: `X402Payer`, an httpx `Auth`.

On a 402 it reads the `PAYMENT-REQUIRED` header (bounded: size, base64, JSON, fields),
picks the first requirement it can pay in its order of schemes, refuses anything above
`max_price` (`PaymentDeclined`, nothing signed), and sends the request again with
`PAYMENT-SIGNATURE`. `batch-settlement` (m2mpay's channel binding) comes first when the
payer has `channels` (`NodeChannels`: its own node, over the node's HTTP API, signs the
next running total in a channel with the seller, opening one from the 402's hint when
allowed) and the async client is used; otherwise, or when no channel can pay, `exact`:
an EIP-3009 authorization of exactly the amount to the payee in the asset's EIP-712
domain. What was paid is kept in `payments` (from `PAYMENT-RESPONSE`).

This module reads the server's JSON itself, with the crypto types only, so a device's
SDK needs nothing of the paywall's side.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx

from m2mpay.crypto import Address, Eip712Domain, PrivateKey, TransferAuthorization
from m2mpay.errors import CodedError, CryptoError

__all__ = [
    "BATCH_SETTLEMENT",
    "MAX_HEADER_BYTES",
    "ChannelCommitter",
    "OfferedPayment",
    "Paid",
    "PaymentDeclined",
    "X402Payer",
    "payment_header",
    "read_payment_required",
    "read_payment_response",
]

MAX_HEADER_BYTES: Final = 8192
BATCH_SETTLEMENT: Final = "batch-settlement"
_MAX_OFFERS: Final = 16
_AMOUNT: Final = re.compile(r"0|[1-9][0-9]{0,77}")
_EIP155: Final = re.compile(r"eip155:([1-9][0-9]{0,18})")
# The authorization is valid from a little before now (clocks differ) until the
# requirement's timeout, as x402's clients sign it.
_SKEW_S: Final = 600


class PaymentDeclined(CodedError):
    """This payer will not pay what a server asks (`code`: `too_expensive`,
    `no_payable_requirement`, `malformed_requirements`), or the server refused it."""


@dataclass(frozen=True, slots=True)
class OfferedPayment:
    """One requirement of a `PAYMENT-REQUIRED`, as read here; `raw` is the object as the
    server sent it (a payment echoes it back in `accepted`)."""

    scheme: str
    network: str
    chain_id: int | None
    asset: Address
    amount: int
    pay_to: Address
    max_timeout_seconds: int
    extra: dict[str, Any]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Paid:
    """What a paid request cost: `amount` of `asset` to `pay_to` on `network`, and the
    seller's settlement (`transaction`) from `PAYMENT-RESPONSE`."""

    url: str
    scheme: str
    network: str
    asset: str
    amount: int
    pay_to: str
    transaction: str | None


def _decoded(text: str) -> dict[str, Any]:
    if len(text) > MAX_HEADER_BYTES:
        raise PaymentDeclined("malformed_requirements", "the header is too large")
    try:
        found = json.loads(base64.b64decode(text.strip().encode("ascii"), validate=True))
    except (UnicodeError, binascii.Error, ValueError, RecursionError):
        raise PaymentDeclined("malformed_requirements", "not base64 of JSON") from None
    if not isinstance(found, dict):
        raise PaymentDeclined("malformed_requirements", "not a JSON object")
    return found


def read_payment_required(text: str) -> tuple[dict[str, Any] | None, list[OfferedPayment]]:
    """A `PAYMENT-REQUIRED` header's resource and the requirements this client can
    read (an unreadable one is skipped: another scheme may be well formed)."""
    found = _decoded(text)
    if found.get("x402Version") != 2:
        raise PaymentDeclined("malformed_requirements", "not x402 version 2")
    accepts = found.get("accepts")
    if not isinstance(accepts, list) or len(accepts) > _MAX_OFFERS:
        raise PaymentDeclined("malformed_requirements", "no list of requirements")
    resource = found.get("resource")
    offers = [offer for offer in map(_offer, accepts) if offer is not None]
    return (resource if isinstance(resource, dict) else None), offers


def _offer(raw: Any) -> OfferedPayment | None:
    if not isinstance(raw, dict):
        return None
    scheme, network, amount = raw.get("scheme"), raw.get("network"), raw.get("amount")
    timeout, extra = raw.get("maxTimeoutSeconds"), raw.get("extra", {})
    if not (isinstance(scheme, str) and isinstance(network, str) and isinstance(amount, str)):
        return None
    if not _AMOUNT.fullmatch(amount) or int(amount) >= 1 << 256:
        return None
    if type(timeout) is not int or not 0 < timeout <= 86_400 or not isinstance(extra, dict):
        return None
    try:
        asset, pay_to = Address(str(raw.get("asset"))), Address(str(raw.get("payTo")))
    except CryptoError:
        return None
    chain = _EIP155.fullmatch(network)
    return OfferedPayment(
        scheme,
        network,
        int(chain.group(1)) if chain else None,
        asset,
        int(amount),
        pay_to,
        timeout,
        extra,
        raw,
    )


def read_payment_response(text: str) -> dict[str, Any]:
    """A `PAYMENT-RESPONSE` header as the JSON object it is (bounded like the rest)."""
    return _decoded(text)


class ChannelCommitter(Protocol):
    """Pays a `batch-settlement` requirement from a channel with its payee."""

    async def commitment(self, offer: OfferedPayment) -> dict[str, Any] | None:
        """The payment's `payload` (the channel commitment), or None when no channel
        can pay it (the payer then falls back to the next scheme)."""
        ...


@dataclass
class X402Payer(httpx.Auth):
    """Pays a 402 with `key`, up to `max_price` (smallest units) per request, in the
    first of `schemes` the server offers; `assets`, when given, are the only tokens it
    pays in. Use it as `httpx.AsyncClient(auth=payer)` (or per request)."""

    key: PrivateKey
    max_price: int
    schemes: Sequence[str] = (BATCH_SETTLEMENT, "exact")
    assets: frozenset[Address] | None = None
    channels: ChannelCommitter | None = None
    clock: Callable[[], float] = time.time
    payments: list[Paid] = field(default_factory=list)
    # Per (network, asset, payee): a commitment the seller answered with an error and
    # did not take (no `PAYMENT-RESPONSE`), and the price it was made for. The next
    # request there offers it again rather than commit a total that carries it.
    _unspent: dict[tuple[str, Address, Address], tuple[int, dict[str, Any]]] = field(
        default_factory=dict, repr=False
    )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        header = response.headers.get("payment-required")
        if response.status_code != 402 or header is None:
            return
        resource, offers = read_payment_required(header)
        offer = self.choose(offers, channels=False)
        request.headers["PAYMENT-SIGNATURE"] = self.pay(offer, resource)
        response = yield request
        self._paid(request, response, offer)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        response = yield request
        header = response.headers.get("payment-required")
        if response.status_code != 402 or header is None:
            return
        resource, offers = read_payment_required(header)
        offer, payment, payload = await self._pay_async(offers, resource)
        request.headers["PAYMENT-SIGNATURE"] = payment
        response = yield request
        if offer.scheme == BATCH_SETTLEMENT and _refused_as_stale(response):
            # The seller holds that total already: another payer on our node committed
            # above it first, or a commitment offered again was taken after all. The
            # seller is paid for it; commit anew, once.
            offer, payment, payload = await self._pay_async(offers, resource)
            request.headers["PAYMENT-SIGNATURE"] = payment
            response = yield request
        if payload is not None and _not_taken(response):
            self._unspent[_payee(offer)] = (offer.amount, payload)
        self._paid(request, response, offer)

    async def pay_async(
        self, offers: Sequence[OfferedPayment], resource: dict[str, Any] | None
    ) -> tuple[OfferedPayment, str]:
        """The offer paid and its `PAYMENT-SIGNATURE`: a channel commitment when a
        channel can pay, else the next scheme in order."""
        offer, payment, _ = await self._pay_async(offers, resource)
        return offer, payment

    async def _pay_async(
        self, offers: Sequence[OfferedPayment], resource: dict[str, Any] | None
    ) -> tuple[OfferedPayment, str, dict[str, Any] | None]:
        """`pay_async`, with the channel commitment paid (None for another scheme)."""
        self.choose(offers, channels=self.channels is not None)  # refusals, by name
        for offer in self._payable(offers, channels=self.channels is not None):
            if offer.amount > self.max_price:
                continue
            if offer.scheme != BATCH_SETTLEMENT:
                return offer, self.pay(offer, resource), None
            assert self.channels is not None
            unspent = self._unspent.pop(_payee(offer), None)
            if unspent is not None and offer.amount <= unspent[0]:
                payload: dict[str, Any] | None = unspent[1]
            else:
                payload = await self.channels.commitment(offer)
            if payload is not None:
                return offer, payment_header(offer, payload, resource), payload
        raise PaymentDeclined("no_payable_requirement", "no channel or other scheme can pay")

    def _paid(
        self, request: httpx.Request, response: httpx.Response, offer: OfferedPayment
    ) -> None:
        if response.status_code == 402 and "payment-required" in response.headers:
            reason = _decoded(response.headers["payment-required"]).get("error")
            raise PaymentDeclined("payment_refused", f"the server refused the payment: {reason}")
        settled = response.headers.get("payment-response")
        if settled is None and response.status_code >= 400:
            return  # the seller answered an error and settled nothing: nothing was paid
        transaction = read_payment_response(settled).get("transaction") if settled else None
        self.payments.append(
            Paid(
                str(request.url),
                offer.scheme,
                offer.network,
                offer.asset.checksum,
                offer.amount,
                offer.pay_to.checksum,
                transaction if isinstance(transaction, str) else None,
            )
        )

    def _payable(self, offers: Sequence[OfferedPayment], *, channels: bool) -> list[OfferedPayment]:
        return [
            offer
            for scheme in self.schemes
            if channels or scheme != BATCH_SETTLEMENT
            for offer in offers
            if offer.scheme == scheme
            and offer.chain_id is not None
            and (self.assets is None or offer.asset in self.assets)
        ]

    def choose(self, offers: Sequence[OfferedPayment], *, channels: bool = False) -> OfferedPayment:
        """The requirement to pay: by this payer's order of schemes, within its price
        (`batch-settlement` only with `channels`)."""
        payable = self._payable(offers, channels=channels)
        if not payable:
            raise PaymentDeclined(
                "no_payable_requirement",
                f"the server asks for none of {', '.join(self.schemes)} on an EVM chain",
            )
        within = [offer for offer in payable if offer.amount <= self.max_price]
        if not within:
            cheapest = min(offer.amount for offer in payable)
            raise PaymentDeclined(
                "too_expensive", f"the server asks {cheapest}, above the maximum {self.max_price}"
            )
        return within[0]

    def pay(self, offer: OfferedPayment, resource: dict[str, Any] | None) -> str:
        """The `PAYMENT-SIGNATURE` header paying `offer` with an EIP-3009 authorization."""
        name, version = offer.extra.get("name"), offer.extra.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or offer.chain_id is None:
            raise PaymentDeclined(
                "malformed_requirements", "the requirement names no EIP-712 domain of its asset"
            )
        now = int(self.clock())
        authorization = TransferAuthorization(
            self.key.address,
            offer.pay_to,
            offer.amount,
            now - _SKEW_S,
            now + offer.max_timeout_seconds,
            secrets.token_bytes(32),
        )
        domain = Eip712Domain(name, version, offer.chain_id, offer.asset)
        signature = self.key.sign_digest(authorization.digest(domain))
        return payment_header(
            offer,
            {
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
            resource,
        )


def _payee(offer: OfferedPayment) -> tuple[str, Address, Address]:
    return offer.network, offer.asset, offer.pay_to


def _not_taken(response: httpx.Response) -> bool:
    """The seller answered a paid request with an error and settled nothing (it settles
    before it serves, or only on success, and says so in `PAYMENT-RESPONSE`)."""
    return (
        response.status_code >= 400
        and response.status_code != 402
        and "payment-response" not in response.headers
    )


def _refused_as_stale(response: httpx.Response) -> bool:
    header = response.headers.get("payment-required")
    if response.status_code != 402 or header is None:
        return False
    return bool(_decoded(header).get("error") == "invalid_batch_settlement_evm_stale_commitment")


def payment_header(
    offer: OfferedPayment, payload: dict[str, Any], resource: dict[str, Any] | None
) -> str:
    """A `PAYMENT-SIGNATURE` value: the offer echoed back with the scheme's payload."""
    found: dict[str, Any] = {"x402Version": 2, "accepted": offer.raw, "payload": payload}
    if resource is not None:
        found["resource"] = resource
    return base64.b64encode(json.dumps(found).encode()).decode("ascii")
