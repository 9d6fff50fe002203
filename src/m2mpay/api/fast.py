"""The API as served: the FastAPI app behind a raw-ASGI fast path for payments.

A payment through the API must cost little more than the payment itself; FastAPI's
routing and dependency solving alone cost more (see `m2mpay.asgi.FastPath`). The
fast path checks the token, validates the body with the same pydantic model and
calls the same `make_payment` as the app's route, and answers errors in the same
shape, so the two cannot disagree. A `RequestGuard` stands in front of both: no body is
read before the token is checked, and none beyond its bound.
"""

from __future__ import annotations

import re
from typing import Any, Final

from fastapi import FastAPI

from m2mpay.api.errors import error_of
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import PaymentRequest
from m2mpay.api.routes_channels import make_payment
from m2mpay.asgi import FastPath, RequestGuard

__all__ = ["create_asgi"]

_PAYMENT: Final = re.compile(r"/v1/channels/(0[xX][0-9a-fA-F]{64})/payments")


def create_asgi(gw: Gateway, app: FastAPI) -> RequestGuard:
    async def pay(
        match: re.Match[str], headers: dict[bytes, bytes], body: bytes
    ) -> tuple[int, Any]:
        gw.credentials.check_header(headers.get(b"authorization"))
        request = PaymentRequest.model_validate_json(body)
        made = await make_payment(gw, bytes.fromhex(match[1][2:]), request)
        return 201, made.model_dump(mode="json")

    fast = FastPath(app, [("POST", _PAYMENT, pay)], on_error=error_of)
    # Every route that takes a body moves money or changes state: the writer's token.
    return RequestGuard(fast, authorize=gw.credentials.check_header, on_error=error_of)
