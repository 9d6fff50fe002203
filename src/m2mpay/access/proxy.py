"""`UpstreamProxy`: the reverse proxy a paywall puts in front of any HTTP service.

Requests are forwarded to the upstream with their method, path, query, headers and body
streamed through httpx; the answer comes back streamed. Hop-by-hop headers (RFC 9110
§7.6.1, and any the `Connection` header names) are dropped both ways, and so is the
payment header: the upstream never sees a payer's authorization. `size_of` asks the
upstream with HEAD for the Content-Length a per-byte price is charged on; an upstream
that declares none cannot be priced by the byte, and the paywall says so (502
`unpriceable`) rather than guess.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import httpx

from m2mpay.access.paywall import Receive, Scope, Send
from m2mpay.access.x402_wire import PAYMENT_SIGNATURE
from m2mpay.asgi.errors import error_body, send_json

__all__ = ["UpstreamProxy"]

_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",  # a request's body is streamed on: httpx frames it anew
        PAYMENT_SIGNATURE.lower(),
    }
)


class UpstreamProxy:
    """Forward every request to `upstream` (`http://host:port[/prefix]`)."""

    def __init__(self, upstream: str, *, timeout: float = 30.0) -> None:
        self._upstream = upstream.rstrip("/")
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = self._http.build_request(
            scope["method"],
            self._target(scope),
            headers=_forwarded(scope["headers"]),
            content=_body(receive) if scope["method"] not in ("GET", "HEAD") else None,
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            await send_json(send, 502, error_body("upstream_unreachable", str(exc)))
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": _forwarded(response.headers.raw, keep_length=True),
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def size_of(self, scope: Scope) -> int | None:
        """The upstream's declared Content-Length of this request's answer, by HEAD."""
        try:
            response = await self._http.head(
                self._target(scope), headers=_forwarded(scope["headers"])
            )
        except httpx.HTTPError:
            return None
        declared = response.headers.get("content-length")
        if response.status_code >= 400 or declared is None or not declared.isdigit():
            return None
        return int(declared)

    def _target(self, scope: Scope) -> str:
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        return f"{self._upstream}{scope['path']}" + (f"?{query}" if query else "")


def _forwarded(
    raw: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...], *, keep_length: bool = False
) -> list[tuple[bytes, bytes]]:
    named = {
        token.strip().lower().encode()
        for key, value in raw
        if key.lower() == b"connection"
        for token in value.decode("latin-1").split(",")
    }
    dropped = {name.encode() for name in _HOP_BY_HOP} | named
    if keep_length:
        # An answer's raw bytes pass through unchanged, so the upstream's length holds.
        dropped.discard(b"content-length")
        # The paywall's server sets its own Date and Server: the upstream's would repeat them.
        dropped |= {b"date", b"server"}
    return [(key.lower(), value) for key, value in raw if key.lower() not in dropped]


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        yield bytes(message.get("body", b""))
        if not message.get("more_body"):
            return
