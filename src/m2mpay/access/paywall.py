"""`Paywall`: an ASGI middleware that asks HTTP requests to pay, the x402 (v2) way.

For a priced path, a request without `PAYMENT-SIGNATURE` gets 402 with a
`PAYMENT-REQUIRED` header (base64 JSON `PaymentRequired`: the resource and what each
scheme `accepts`) and the same object as its JSON body, for clients that read the body.
A payment is decoded with the bounded codec; a header that does not decode (too large,
not base64 JSON, another x402 version) is 400, as x402's HTTP transport says of a
malformed payload, in the one error shape with the `PAYMENT-REQUIRED` header again. A
payment its scheme refuses (replayed, expired, not yet valid, another network, asset,
payee, resource or amount) is 402 with x402's reason as `error`. A payment is settled
(durable and final for the seller) before the request reaches the app, whose answer
then carries `PAYMENT-RESPONSE`.

With `settle_on_success` (the reverse proxy's choice, as x402's own middleware does) a
verified payment is settled only once the app's answer head is known and below 400: the
buyer is not charged for an upstream's error, which passes through without a receipt.
Nothing of a successful answer is released before its settlement; if that fails, the
answer is dropped and the buyer gets the 402 (or 502) instead. The same payment sent
twice at once waits for the first to finish, so it reaches the app once.

What a payment buys is bounded here, whatever the app does: a response priced by the
byte ends at the bytes paid for, one priced by the second at the seconds paid for. A
scheme that can meter (`meter(verified)`, the channel scheme) lets a response priced by
the second go on as the client keeps paying (`access/metering.py`): it is paused when
the payments held fall behind by more than the credit window, and ended when they stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    MutableMapping,
    Sequence,
)
from typing import Any, Final

import orjson

from m2mpay.access.metering import CreditSource, StreamMeter
from m2mpay.access.pricing import Per, PriceList, Purchase
from m2mpay.access.schemes import Scheme, Verified
from m2mpay.access.x402_wire import (
    PAYMENT_REQUIRED,
    PAYMENT_RESPONSE,
    PAYMENT_SIGNATURE,
    PaymentPayload,
    PaymentRefused,
    PaymentRequired,
    PaymentRequirements,
    ResourceInfo,
    SettleResponse,
    decode_header,
    encode_header,
)
from m2mpay.asgi.errors import error_body
from m2mpay.errors import M2MPayError

__all__ = ["Paywall", "SizeOf"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
SizeOf = Callable[[Scope], Awaitable[int | None]]
"""The size in bytes a request's response will have (its declared Content-Length), or
None when unknown: what a per-byte price is charged on."""

_SIGNATURE_KEY: Final = PAYMENT_SIGNATURE.lower().encode()
_UNPAID: Final = "PAYMENT-SIGNATURE header is required"
_log = logging.getLogger(__name__)


class _PaidFor(Exception):
    """The response reached what was paid for: the app is stopped here."""


class _Unsettled(Exception):
    """Settling on the answer's head failed: the app is stopped, its answer dropped."""

    def __init__(self, status: int, body: Any, refused: PaymentRefused | None) -> None:
        super().__init__(status)
        self.status, self.body, self.refused = status, body, refused


Settler = Callable[[int], Awaitable[SettleResponse | None]]
"""Settles (or not) once the app's answer status is known: the receipt, or None when
the answer is not charged."""


class Paywall:
    """Ask for payment on the paths `prices` names, in each of `schemes` (in the order
    offered: a client takes the first it can pay); other paths pass through free."""

    def __init__(
        self,
        app: App,
        prices: PriceList,
        schemes: Sequence[Scheme],
        *,
        size_of: SizeOf | None = None,
        description: str | None = None,
        settle_on_success: bool = False,
        credit_window_s: int = 2,
        pause_limit_s: float = 30.0,
        credit_poll_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not schemes:
            raise ValueError("a paywall needs a scheme to be paid in")
        self._app = app
        self._prices = prices
        self._schemes = {scheme.name: scheme for scheme in schemes}
        self._size_of = size_of
        self._description = description
        self._on_success = settle_on_success
        self._window_s = credit_window_s
        self._pause_limit_s = pause_limit_s
        self._poll_s = credit_poll_s
        self._clock = clock
        # Payments in flight (settle_on_success): a lock and how many hold or wait on it.
        self._in_flight: dict[bytes, tuple[asyncio.Lock, int]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        price = self._prices.price_of(scope["path"]) if "path" in scope else None
        if price is None:
            await self._app(scope, receive, send)
            return
        if scope["type"] != "http":
            # x402 pays HTTP requests: a WebSocket to a priced path is not let through free.
            await send({"type": "websocket.close", "code": 1008, "reason": "payment required"})
            return
        size = await self._size_of(scope) if price.per is Per.BYTE and self._size_of else None
        try:
            purchase = price.purchase(size)
        except ValueError as exc:
            # The seller's upstream cannot be priced: no payment is asked, nothing served.
            await _json(send, 502, error_body("unpriceable", str(exc)))
            return
        resource = ResourceInfo(url=_url(scope), description=self._description)
        offers = [scheme.requirements(resource, purchase) for scheme in self._schemes.values()]
        header = _header(scope)
        if header is None:
            await _required(send, 402, resource, offers, _UNPAID)
            return
        try:
            payment = decode_header(header, PaymentPayload)
        except PaymentRefused as refused:
            await _required(send, 400, resource, offers, refused.code, refused.message)
            return
        async with self._one_at_a_time(payment):
            try:
                verified = await self._verify(scope, payment, offers)
                settled = None if self._on_success else await self._settle(verified)
            except _Unsettled as failed:
                await _unsettled(send, failed, resource, offers)
                return

            async def settler(status: int) -> SettleResponse | None:
                if settled is not None:
                    return settled
                # The buyer is not charged for an error: it passes through unreceipted.
                return None if status >= 400 else await self._settle(verified)

            meters: list[CreditSource] = []

            def meter_of() -> StreamMeter | None:
                # Once settled: the scheme counts the opening payment as the meter's.
                made = self._meter(verified, purchase)
                if made is None:
                    return None
                meters.append(made[1])
                return made[0]

            try:
                await self._serve(scope, receive, send, purchase, settler, meter_of)
            except _Unsettled as failed:
                await _unsettled(send, failed, resource, offers)
            finally:
                for source in meters:
                    close = getattr(source, "close", None)
                    if close is not None:
                        close()

    def _meter(
        self, verified: Verified, purchase: Purchase
    ) -> tuple[StreamMeter, CreditSource] | None:
        metering = getattr(self._schemes[verified.requirements.scheme], "meter", None)
        if purchase.per is not Per.SECOND or metering is None:
            return None
        source: CreditSource | None = metering(verified)
        if source is None:
            return None
        per_second = purchase.amount // purchase.units
        meter = StreamMeter(
            per_second,
            per_second * self._window_s,
            source,
            verified.amount,
            pause_limit_s=self._pause_limit_s,
            poll_s=self._poll_s,
            clock=self._clock,
        )
        return meter, source

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, payment: PaymentPayload) -> AsyncIterator[None]:
        """Settling first, the scheme's book refuses a payment's twin; settling on
        success, the twin waits here until the first is settled (or not charged)."""
        if not self._on_success:
            yield
            return
        key = hashlib.sha256(orjson.dumps(payment.payload, option=orjson.OPT_SORT_KEYS)).digest()
        lock, users = self._in_flight.get(key, (asyncio.Lock(), 0))
        self._in_flight[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._in_flight[key]
            if users == 1:
                del self._in_flight[key]
            else:
                self._in_flight[key] = (lock, users - 1)

    async def _settle(self, verified: Verified) -> SettleResponse:
        with _unsettled_on_failure():
            return await self._schemes[verified.requirements.scheme].settle(verified)

    async def _verify(
        self, scope: Scope, payment: PaymentPayload, offers: list[PaymentRequirements]
    ) -> Verified:
        with _unsettled_on_failure():
            return await self._verified(scope, payment, offers)

    async def _verified(
        self, scope: Scope, payment: PaymentPayload, offers: list[PaymentRequirements]
    ) -> Verified:
        chosen = payment.accepted
        scheme = self._schemes.get(chosen.scheme)
        offered = next((o for o in offers if o.scheme == chosen.scheme), None)
        if scheme is None or offered is None:
            raise PaymentRefused("unsupported_scheme", f"scheme {chosen.scheme!r} is not offered")
        # An authorization for another resource (its price may be another's) is refused,
        # whatever host name the client reached us by.
        if payment.resource is not None and _target(payment.resource.url) != _target(_url(scope)):
            raise PaymentRefused(
                "invalid_payment_requirements", "the payment is for another resource"
            )
        return await scheme.verify(payment, offered)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        purchase: Purchase,
        settle: Settler,
        meter_of: Callable[[], StreamMeter | None] = lambda: None,
    ) -> None:
        receipt_key = PAYMENT_RESPONSE.lower().encode()
        left = purchase.units if purchase.per is Per.BYTE else None
        seconds = purchase.units if purchase.per is Per.SECOND else None
        started = ended = False
        meter: StreamMeter | None = None
        loop = asyncio.get_running_loop()
        deadline = asyncio.timeout(None if seconds is None else seconds)

        async def metered(message: Message) -> None:
            nonlocal left, started, ended, meter
            if ended:
                raise _PaidFor
            if message["type"] == "http.response.start":
                # The paid seconds are the answer's, not the settlement's: the clock is held
                # while it lasts (never cancelling it midway) and starts anew after.
                deadline.reschedule(None)
                settled = await settle(int(message["status"]))
                meter = meter_of() if settled is not None and seconds is not None else None
                if seconds is not None and meter is None:
                    deadline.reschedule(loop.time() + seconds)
                started = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != receipt_key]
                if left is not None:
                    headers = _capped_length(headers, left)
                if settled is not None:
                    headers.append((receipt_key, encode_header(settled).encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and meter is not None:
                if not await meter.admit():  # payments stopped: end what was paid for
                    ended = True
                    await send({"type": "http.response.body", "body": b""})
                    raise _PaidFor
            elif message["type"] == "http.response.body" and left is not None:
                body = bytes(message.get("body", b""))
                if len(body) >= left:
                    message = {"type": "http.response.body", "body": body[:left]}
                    left, ended = 0, True
                    await send(message)
                    raise _PaidFor
                left -= len(body)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                ended = True
            await send(message)

        try:
            async with deadline:
                await self._app(scope, receive, metered)
        except (_PaidFor, TimeoutError):
            if started and not ended:
                await send({"type": "http.response.body", "body": b""})


@contextlib.contextmanager
def _unsettled_on_failure() -> Iterator[None]:
    """A refusal (402, x402's reason) or a failure of the ledger or the book (502): either
    way nothing is charged and nothing served."""
    try:
        yield
    except PaymentRefused as refused:
        raise _Unsettled(402, None, refused) from None
    except M2MPayError as exc:
        _log.warning("paywall: settling failed: %s", exc)
        raise _Unsettled(502, error_body("settlement_failed", str(exc)), None) from None


async def _unsettled(
    send: Send, failed: _Unsettled, resource: ResourceInfo, offers: list[PaymentRequirements]
) -> None:
    if failed.refused is not None:
        refused = failed.refused
        await _required(send, failed.status, resource, offers, refused.code, refused.message)
    else:
        await _json(send, failed.status, failed.body)


def _header(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == _SIGNATURE_KEY:
            try:
                return str(value.decode("ascii"))
            except UnicodeDecodeError:
                return "\ufffd"  # not base64: the codec refuses it as malformed
    return None


def _url(scope: Scope) -> str:
    host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), "")
    if not host and scope.get("server"):
        host = f"{scope['server'][0]}:{scope['server'][1]}"
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{scope['path']}" + (f"?{query}" if query else "")


def _target(url: str) -> str:
    """A URL's path and query: the resource, whatever host name reached it."""
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def _capped_length(headers: list[Any], left: int) -> list[Any]:
    capped = []
    for key, value in headers:
        if key.lower() != b"content-length":
            capped.append((key, value))
        elif value.isdigit():
            capped.append((key, str(min(int(value), left)).encode()))
    return capped


async def _required(
    send: Send,
    status: int,
    resource: ResourceInfo,
    offers: list[PaymentRequirements],
    error: str,
    message: str | None = None,
) -> None:
    required = PaymentRequired(error=error, resource=resource, accepts=offers)
    body: dict[str, Any] = required.model_dump(mode="json", by_alias=True, exclude_none=True)
    if status == 400:
        body = error_body(error, message or error, PAYMENT_SIGNATURE)
    elif message:
        body["message"] = message
    await _json(send, status, body, [(PAYMENT_REQUIRED.lower().encode(), encode_header(required))])


async def _json(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, str]] | None = None
) -> None:
    content = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *((k, v.encode("ascii")) for k, v in headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
