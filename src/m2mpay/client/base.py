"""The HTTP core every resource of `NodeClient` shares: one pooled httpx client, the
bearer token, and the API's error shape turned into `m2mpay.errors.ApiRefusal`.

An answer is read in chunks up to `MAX_ANSWER_BYTES` and parsed with orjson, whose
depth is bounded: the stdlib parser httpx uses recurses in C and, with the recursion
limit py-evm raises to 100,000, a deeply nested answer would crash the process."""

from __future__ import annotations

from typing import Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx
import orjson

from m2mpay import __version__
from m2mpay.client.codec import decode
from m2mpay.crypto import Address
from m2mpay.errors import (
    ApiConflict,
    ApiFailure,
    ApiInvalidInput,
    ApiNotFound,
    ApiRefusal,
    ApiUnauthorized,
    MalformedMessage,
    NodeUnreachable,
)

__all__ = [
    "DEFAULT_URL",
    "MAX_ANSWER_BYTES",
    "ApiBase",
    "address_text",
    "decode_answer",
    "decode_items",
    "given",
    "given_amounts",
    "path_id",
    "read_answer",
    "refusal_from",
    "refusal_of",
]

DEFAULT_URL: Final = "http://127.0.0.1:8402"
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
"""Largest answer read from a node (a listing of thousands of channels takes a few MB)."""

_REFUSALS: Final[dict[int, type[ApiRefusal]]] = {
    401: ApiUnauthorized,
    404: ApiNotFound,
    409: ApiConflict,
    422: ApiInvalidInput,
}
# Idle pooled connections are dropped well before the node's own keep-alive (75 s)
# ends them, so a request never goes out on a connection the server is closing.
_KEEP_ALIVE_S: Final = 30.0

T = TypeVar("T")


def decode_answer(raw: bytes, what: str) -> Any:
    """The JSON value of an answer's bytes; `MalformedMessage` if they are not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedMessage(f"{what}: the node's answer is not JSON") from None


async def read_answer(response: httpx.Response, what: str) -> bytes:
    """The body of a streamed answer, or `MalformedMessage` past `MAX_ANSWER_BYTES`."""
    declared = response.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared[:20]) > MAX_ANSWER_BYTES:
        raise MalformedMessage(f"{what}: an answer of {declared} bytes is above the limit")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise MalformedMessage(f"{what}: the answer runs past {MAX_ANSWER_BYTES} bytes")
    return bytes(body)


def refusal_from(status: int, reason: str, raw: bytes) -> ApiRefusal:
    """The typed error for a non-2xx answer of `status` whose body is `raw`."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code, message = error["code"], str(error.get("message", ""))
        field = error.get("field")
        field = field if isinstance(field, str) else None
    else:
        text = raw[:200].decode("utf-8", "replace")
        code, message, field = f"http_{status}", text or reason, None
    kind = _REFUSALS.get(status) or (ApiFailure if status >= 500 else ApiRefusal)
    return kind(status, code, message, field)


def refusal_of(response: httpx.Response) -> ApiRefusal:
    """The typed error for a non-2xx answer (already read); bodies not in the API's
    shape (a proxy's page, say) still give the status, with `http_<status>` as the code."""
    return refusal_from(response.status_code, response.reason_phrase, response.content)


def path_id(value: str | bytes) -> str:
    """An id as one path segment: bytes as 0x-hex; text quoted, so that an id can never
    step into another route (`../wallet`)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return quote(value, safe="")


def address_text(address: Address | str) -> str:
    """An address for a request body. Text goes as given, so that the node (not the
    client) judges a malformed one and names the field."""
    return address.checksum if isinstance(address, Address) else address


def given(**fields: object) -> dict[str, object]:
    """The optional fields of a request body that the caller gave: one left out (None)
    is not sent, so that the node applies its default. An `Address` goes as
    `address_text` sends it, the one form a body holds an address in."""
    return {
        name: address_text(value) if isinstance(value, Address) else value
        for name, value in fields.items()
        if value is not None
    }


def given_amounts(**amounts: int | None) -> dict[str, object]:
    """The optional amounts of a request body that the caller gave, as the API takes
    amounts: integer strings (exact past 2**53, where JSON numbers are not)."""
    return given(**{name: None if value is None else str(value) for name, value in amounts.items()})


def decode_items(cls: type[T], raw: Any, key: str) -> list[T]:
    """The array under `key` of a list answer (`{"channels": [...]}`), each item a `cls`."""
    items = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise MalformedMessage(f"the node's answer has no `{key}` array")
    return [decode(cls, item, f"{key}[]") for item in items]


class ApiBase:
    """The node at `url`; `token` is its API bearer token (needed for writes, and for
    reads unless the node has public reads). `transport` replaces the network, e.g.
    `httpx.ASGITransport(app, raise_app_exceptions=False)` to talk to an app in the
    same process (without that flag a failing handler raises into the caller instead
    of answering 500 as a server does). The ASGI transport buffers whole answers, so
    the event stream needs a real server."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": f"m2mpay-client/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Closing a channel waits for the chain: the default timeout is generous, and
        # only connecting is expected to be quick.
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_keepalive_connections=20, keepalive_expiry=_KEEP_ALIVE_S),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        """One request; the decoded JSON answer (None for an empty one)."""
        what = f"{method} {path}"
        try:
            async with self._http.stream(method, path, json=body, params=params) as response:
                raw = await read_answer(response, what)
        except httpx.TransportError as exc:  # includes timeouts
            raise NodeUnreachable(f"{method} {self.url}{path}: {_describe(exc)}") from exc
        if not response.is_success:
            raise refusal_from(response.status_code, response.reason_phrase, raw)
        if not raw:
            return None
        return decode_answer(raw, what)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    return str(exc) or type(exc).__name__
