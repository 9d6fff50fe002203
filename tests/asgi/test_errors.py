"""The one error shape both HTTP services answer in (`m2mpay.asgi.errors`): a refusal,
routing's own refusals and a raw-ASGI answer all come out as
`{"error": {"code", "message"[, "field"]}}`, and a 401 says to send a bearer token."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from m2mpay.asgi import error_body, install_error_handlers, refusal_answer, send_json
from m2mpay.errors import M2MPayError


@dataclass
class _Refused(M2MPayError):
    status: int
    code: str
    message: str
    field: str | None = None


def _error_of(exc: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, _Refused):
        return refusal_answer(exc)
    return 500, error_body("internal", "see the log")


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, _error_of, (_Refused, Exception))

    @app.get("/refused/{status}")
    async def refused(status: int) -> None:
        raise _Refused(status, "no", "not now", "amount" if status == 422 else None)

    @app.get("/crashed")
    async def crashed() -> None:
        raise RuntimeError("a bug")

    return app


async def _ask(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.request(method, path)


async def test_a_refusal_is_answered_with_its_status_code_message_and_field() -> None:
    invalid = await _ask("GET", "/refused/422")
    assert invalid.status_code == 422
    assert invalid.json() == {"error": {"code": "no", "message": "not now", "field": "amount"}}
    conflict = await _ask("GET", "/refused/409")
    assert conflict.json() == {"error": {"code": "no", "message": "not now"}}
    assert "www-authenticate" not in conflict.headers


async def test_a_401_names_the_bearer_scheme() -> None:
    answer = await _ask("GET", "/refused/401")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_routing_refusals_have_the_shape_and_a_405_names_the_methods_allowed() -> None:
    missing = await _ask("GET", "/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await _ask("POST", "/crashed")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "GET"


async def test_an_unexpected_error_is_answered_without_its_details() -> None:
    answer = await _ask("GET", "/crashed")
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal", "message": "see the log"}}


async def test_a_raw_asgi_answer_is_json_with_its_length_and_a_challenge_on_401() -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    payload = error_body("missing_token", "send a token")
    await send_json(send, 401, payload)
    start, body = sent
    assert start["status"] == 401
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(body["body"])).encode()
    assert headers[b"www-authenticate"] == b"Bearer"
    assert orjson.loads(body["body"]) == payload
    sent.clear()
    await send_json(send, 200, {"ok": True})
    assert b"www-authenticate" not in dict(sent[0]["headers"])
