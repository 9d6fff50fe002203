"""The watcher's HTTP API (FastAPI), version 1.

    GET  /v1/info                                   who and where the watcher is
    POST /v1/registrations                          a party asks to be defended → token
    PUT  /v1/channels/{channel_id}/proofs/{party}   the party's peer's newer proof
    GET  /v1/channels/{channel_id}                  what the watcher knows of a channel
    GET  /v1/disputes                               every challenge and settlement sent

Every error has the project's one shape (`m2mpay.asgi.errors`), answered from one
mapping (`_error_of`) by FastAPI and by the fast path alike. Bodies are
parsed by hand with orjson rather than by FastAPI's model binding: a token must be
checked before the body is read, and a refusal must name the field at fault. A body is
read in chunks up to `MAX_BODY_BYTES` and refused with 413 past it (at once when its
Content-Length says so), so no client makes the watcher hold more. The models in
`m2mpay.watcher.models` describe the same shapes in /openapi.json.

The proof update is the hot path (thousands a second, one signature recovery each).
FastAPI's routing, dependency solving and middleware cost more than the recovery, so
`create_asgi` puts a thin ASGI layer in front of the app that answers exactly that
route itself, with the same handler the FastAPI route uses; everything else, and the
documentation of that route, stays with FastAPI.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi

from m2mpay import __version__
from m2mpay.asgi.errors import (
    error_body,
    error_responses,
    install_error_handlers,
    refusal_answer,
    send_json,
)
from m2mpay.errors import StoreError
from m2mpay.watcher.errors import BodyTooLarge, InvalidInput, Unauthorized, WatcherRefusal
from m2mpay.watcher.models import (
    ChannelView,
    DisputeList,
    Info,
    ProofStored,
    ProofUpdate,
    RegistrationCreated,
    RegistrationRequest,
)
from m2mpay.watcher.parsing import (
    parse_address,
    parse_channel_id,
    parse_channel_params,
    parse_int,
    parse_object,
    parse_signature,
    parse_uint256,
)
from m2mpay.watcher.service import Watcher

__all__ = ["MAX_BODY_BYTES", "create_app", "create_asgi"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("m2mpay.watcher")

MAX_BODY_BYTES: Final = 16 * 1024
"""Largest request body (a registration takes about 600 bytes)."""
_REGISTRATION_FIELDS: Final = frozenset({"channel", "party", "issued_at", "signature"})
_PROOF_FIELDS: Final = frozenset({"transferred", "signature"})
_ERRORS: Final = error_responses(
    {
        401: "Missing or wrong bearer token",
        404: "Unknown registration or channel",
        409: "Not newer than what is held",
        413: "Body above the size limit",
        422: "Malformed input or wrong signer; `field` names it",
    }
)
_BODY_MODELS: Final = (RegistrationRequest, ProofUpdate)
_STORE_FAILED: Final = "the watcher cannot make updates durable now"
_CRASHED: Final = "unexpected error; see the watcher's log"


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _error_of(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and body a failure is answered with; nothing shows a stack trace."""
    if isinstance(exc, WatcherRefusal):
        return refusal_answer(exc)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"][1:]) or None
        return 422, error_body("invalid_field", str(first["msg"]), where)
    if isinstance(exc, StoreError):
        log.error("the store failed: %s", exc)
        return 503, error_body("store_unavailable", _STORE_FAILED)
    log.error("unexpected error in the watcher API", exc_info=exc)
    return 500, error_body("internal_error", _CRASHED)


def _body_schema(model: type[Any]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


# The bearer token is read by hand (before the body), so FastAPI does not know it.
_BEARER_PARAMETER: Final = {
    "name": "Authorization",
    "in": "header",
    "required": True,
    "description": "`Bearer <token>` with the token the registration returned.",
    "schema": {"type": "string"},
}

# What a client does next with a registration's answer, for readers and for
# stateful test tools (OpenAPI links).
_REGISTRATION_LINKS: Final = {
    "UpdateProof": {
        "operationId": "put_proof",
        "parameters": {
            "channel_id": "$response.body#/channel_id",
            "party": "$response.body#/party",
            "header.Authorization": "Bearer {$response.body#/token}",
        },
        "description": "Hand over the peer's newer proofs with the token.",
    },
    "GetChannel": {
        "operationId": "get_channel",
        "parameters": {"channel_id": "$response.body#/channel_id"},
        "description": "What the watcher now knows of the channel.",
    },
}


def _too_large() -> BodyTooLarge:
    return BodyTooLarge("body_too_large", f"a body is at most {MAX_BODY_BYTES} bytes", "body")


def _check_declared_length(value: str | None) -> None:
    """413 for a Content-Length above the limit, before a byte of the body is read.

    Anything but plain ASCII digits is left to the server and the chunked read: `int`
    takes other digits ("²") and fails on more than 4300 of them.
    """
    if value is None:
        return
    text = value.strip()
    if text.isascii() and text.isdigit() and (len(text) > 9 or int(text) > MAX_BODY_BYTES):
        raise _too_large()


async def _read_body(chunks: AsyncIterator[bytes]) -> bytes:
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    return bytes(body)


async def _asgi_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _parse_json(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise _too_large()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("invalid_json", f"the body is not JSON: {exc}", "body") from None


def _bearer(header: str | None) -> str:
    if header is None:
        raise Unauthorized("missing_token", "send the registration's token as `Bearer <token>`")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing_token", "the Authorization header must be `Bearer <token>`")
    return token.strip()


async def _store_proof(
    watcher: Watcher,
    channel_id: str,
    party: str,
    authorization: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
) -> dict[str, Any]:
    """PUT /v1/channels/{channel_id}/proofs/{party}: the token first, then the body."""
    token = _bearer(authorization)
    channel = parse_channel_id(channel_id)
    address = parse_address(party, "party")
    watcher.authorize(channel, address, token)
    _check_declared_length(content_length)
    raw = parse_object(_parse_json(await _read_body(body)), "body", _PROOF_FIELDS)
    transferred = parse_uint256(raw["transferred"], "transferred")
    signature = parse_signature(raw["signature"])
    await watcher.update(channel, address, token, transferred, signature)
    return {
        "channel_id": channel_id.lower(),
        "party": address.checksum,
        "transferred": raw["transferred"],
        "stored": True,
    }


_PROOF_PATH: Final = re.compile(r"/v1/channels/([^/]+)/proofs/([^/]+)")


class _ProofFastPath:
    """Answers PUT /v1/channels/{id}/proofs/{party} in raw ASGI; passes the rest on."""

    def __init__(self, app: FastAPI, watcher: Watcher) -> None:
        self.app = app
        self._watcher = watcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "PUT":
            match = _PROOF_PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        try:
            authorization = content_length = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
                elif name == b"content-length":
                    content_length = value.decode("latin-1")
            channel_id, party = match.group(1), match.group(2)
            payload = await _store_proof(
                self._watcher,
                channel_id,
                party,
                authorization,
                content_length,
                _asgi_chunks(receive),
            )
        except Exception as exc:  # every failure gets the error shape
            await send_json(send, *_error_of(exc))
            return
        await send_json(send, 200, payload)


def create_asgi(watcher: Watcher) -> _ProofFastPath:
    """The API as an ASGI app: FastAPI behind the proof-update fast path."""
    return _ProofFastPath(create_app(watcher), watcher)


def create_app(watcher: Watcher) -> FastAPI:
    """The API over a started `watcher` (the caller owns its lifecycle)."""
    app = FastAPI(
        title="m2mpay watcher",
        version=__version__,
        description="A watchtower for m2mpay payment channels: it holds the newest balance"
        " proofs parties give it and challenges stale unilateral closes on their behalf.",
        # A path with a stray slash is answered 404 in the error shape, not with a
        # redirect that a client would have to follow with its body again.
        redirect_slashes=False,
    )

    install_error_handlers(
        app, _error_of, (WatcherRefusal, RequestValidationError, StoreError, Exception)
    )

    @app.get(
        "/v1/info",
        response_model=Info,
        operation_id="get_info",
        summary="The watcher's address, chain and load",
    )
    async def info() -> Response:
        return _json(watcher.info())

    @app.post(
        "/v1/registrations",
        status_code=201,
        response_model=RegistrationCreated,
        responses={**_ERRORS, 201: {"links": _REGISTRATION_LINKS}},
        operation_id="register",
        openapi_extra=_body_schema(RegistrationRequest),
        summary="Ask the watcher to defend a party of a channel",
    )
    async def register(request: Request) -> Response:
        _check_declared_length(request.headers.get("content-length"))
        body = await _read_body(request.stream())
        raw = parse_object(_parse_json(body), "body", _REGISTRATION_FIELDS)
        params = parse_channel_params(raw["channel"])
        party = parse_address(raw["party"], "party")
        issued_at = parse_int(raw["issued_at"], "issued_at", 0, 2**63 - 1)
        signature = parse_signature(raw["signature"])
        token = await watcher.register(params, party, issued_at, signature)
        created = {"channel_id": "0x" + params.id.hex(), "party": party.checksum, "token": token}
        return _json(created, 201)

    @app.put(
        "/v1/channels/{channel_id}/proofs/{party}",
        response_model=ProofStored,
        responses=_ERRORS,
        operation_id="put_proof",
        openapi_extra={**_body_schema(ProofUpdate), "parameters": [_BEARER_PARAMETER]},
        summary="Give the watcher a newer proof signed by the party's peer",
    )
    async def put_proof(channel_id: str, party: str, request: Request) -> Response:
        # Normally answered by `_ProofFastPath`; kept here for the schema and for a
        # bare `create_app`, with the very same handler.
        headers = request.headers
        stored = await _store_proof(
            watcher,
            channel_id,
            party,
            headers.get("authorization"),
            headers.get("content-length"),
            request.stream(),
        )
        return _json(stored)

    @app.get(
        "/v1/channels/{channel_id}",
        response_model=ChannelView,
        responses={404: _ERRORS[404], 422: _ERRORS[422]},
        operation_id="get_channel",
        summary="What the watcher knows of a channel",
    )
    async def channel(channel_id: str) -> Response:
        return _json(watcher.channel(parse_channel_id(channel_id)))

    @app.get(
        "/v1/disputes",
        response_model=DisputeList,
        operation_id="get_disputes",
        summary="Every action taken on chain",
    )
    async def disputes() -> Response:
        return _json({"disputes": watcher.disputes()})

    def openapi() -> dict[str, Any]:
        # Bodies are parsed by hand, so FastAPI does not know their models: add them.
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _BODY_MODELS:
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
