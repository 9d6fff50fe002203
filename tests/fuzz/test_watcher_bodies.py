"""The watcher's HTTP bodies against hostile input, over HTTP to a real `m2mpay watcher
serve` process: every refusal is a 4xx in the one error shape (never a 5xx or a dropped
connection), a body past the limit costs the process no memory, and a proof update's
token is checked before its body is read. The parsers behind the bodies are fuzzed
in process too, where many more examples fit."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Any, Final
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mpay.watcher.api import MAX_BODY_BYTES
from m2mpay.watcher.errors import InvalidInput
from m2mpay.watcher.parsing import (
    parse_address,
    parse_channel_id,
    parse_channel_params,
    parse_int,
    parse_object,
    parse_signature,
    parse_uint256,
)
from tests.fuzz.hostile import (
    FUZZ,
    TEN_MB,
    hostile_json,
    json_nesting_bombs,
    truncations,
)
from tests.watcher.served import Registration, ServedWatcher, channel, served_watcher

pytestmark = pytest.mark.timeout(120)

HTTP: Final = settings(FUZZ, max_examples=100)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70)
    | st.sampled_from(["0x" + "ab" * 20, "0x" + "00" * 20, "0x" + "11" * 65, "1", "0", "-1"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def watcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedWatcher]:
    with served_watcher(tmp_path_factory.mktemp("fuzz-watcher")) as served:
        yield served


@pytest.fixture(scope="module")
def registration(watcher: ServedWatcher) -> Registration:
    return watcher.register(nonce=1)


@pytest.fixture(scope="module")
def http(watcher: ServedWatcher) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=watcher.url, timeout=30) as client:
        yield client


def _refused(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text)
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert set(error) <= {"code", "message", "field"}
    return error


def _answered(response: httpx.Response, ok: int) -> None:
    """A success, or a refusal in the error shape: never a server error."""
    if response.status_code != ok:
        _refused(response, 401, 404, 409, 413, 422)


def _bearer(registration: Registration) -> dict[str, str]:
    return {"Authorization": f"Bearer {registration.token}"}


def _chunks(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    # A generator body goes out chunked: no Content-Length to refuse it by.
    for _ in range(size // chunk):
        yield b"[" * chunk


# Runs first in the module, while the process's peak memory is still its own.
def test_bodies_past_the_limit_cost_the_process_no_memory(
    watcher: ServedWatcher, registration: Registration, http: httpx.Client
) -> None:
    before = watcher.resident_peak_bytes()

    def send(index: int) -> int:
        with httpx.Client(base_url=watcher.url, timeout=60) as client:
            if index % 2:
                return client.post("/v1/registrations", content=b"[" * TEN_MB).status_code
            content = _chunks(TEN_MB)
            return client.post("/v1/registrations", content=content).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(send, range(4)))
    # Before the limit was applied while reading, each body was read whole first.
    assert watcher.resident_peak_bytes() - before < 8 * 1024 * 1024
    assert statuses == [413] * 4


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_ten_megabytes_are_refused_with_413_on_every_body_route(
    registration: Registration, http: httpx.Client, chunked: bool
) -> None:
    def body() -> Any:
        return _chunks(TEN_MB) if chunked else b"x" * TEN_MB

    error = _refused(http.post("/v1/registrations", content=body()), 413)
    assert error == {
        "code": "body_too_large",
        "message": f"a body is at most {MAX_BODY_BYTES} bytes",
        "field": "body",
    }
    put = http.put(registration.proof_path, content=body(), headers=_bearer(registration))
    assert _refused(put, 413)["code"] == "body_too_large"
    assert http.get("/v1/info").status_code == 200  # the connection and the process live on


def test_a_proof_update_checks_the_token_before_the_body(
    registration: Registration, http: httpx.Client
) -> None:
    path = registration.proof_path
    for content in (b"x" * TEN_MB, b"not json", b"[" * 100):
        wrong = http.put(path, content=content, headers={"Authorization": "Bearer nope"})
        assert _refused(wrong, 401)["code"] == "wrong_token"
        assert _refused(http.put(path, content=content), 401)["code"] == "missing_token"
    unknown = path.replace(registration.channel_id, "0x" + "77" * 32)
    assert _refused(http.put(unknown, content=b"x" * TEN_MB, headers=_bearer(registration)), 404)


@pytest.mark.parametrize("route", ["registration", "proof"])
def test_fixed_hostile_bodies_are_refused_with_422(
    watcher: ServedWatcher, registration: Registration, http: httpx.Client, route: str
) -> None:
    if route == "registration":
        valid = orjson.dumps(watcher.registration_body(channel(99)))

        def send(content: bytes) -> httpx.Response:
            return http.post("/v1/registrations", content=content)

    else:
        valid = orjson.dumps(watcher.proof_body(registration.params, 10**6))

        def send(content: bytes) -> httpx.Response:
            return http.put(registration.proof_path, content=content, headers=_bearer(registration))

    bombs = [bomb[: MAX_BODY_BYTES - 10] for bomb in json_nesting_bombs()]
    for content in [*bombs, *hostile_json(valid), *truncations(valid, 40)]:
        _refused(send(content), 422)
    for bomb in json_nesting_bombs():
        assert _refused(send(bomb), 413)["code"] == "body_too_large"
    for number in (b"1" + b"0" * 90, b"NaN", b"Infinity", b"-1", b"1e400", b"1.5", b"true"):
        for field in (b'"issued_at"', b'"transferred"', b'"nonce"', b'"challenge_period"'):
            if field[1:-1] in valid:
                changed = valid.replace(field + b":", field + b":" + number + b',"_":', 1)
                _refused(send(changed), 422)


@given(body=st.binary(max_size=400) | json_values.map(orjson.dumps))
@HTTP
def test_any_registration_body_is_answered_in_shape(http: httpx.Client, body: bytes) -> None:
    _answered(http.post("/v1/registrations", content=body), 201)


@given(value=json_values, data=st.data())
@HTTP
def test_any_value_at_any_registration_field_is_answered_in_shape(
    watcher: ServedWatcher, http: httpx.Client, value: Any, data: st.DataObject
) -> None:
    body: dict[str, Any] = watcher.registration_body(channel(7))
    target = body["channel"] if data.draw(st.booleans()) else body
    target[data.draw(st.sampled_from(sorted(target)))] = value
    _answered(http.post("/v1/registrations", json=body), 201)


@given(
    body=st.binary(max_size=400) | json_values.map(orjson.dumps), value=json_values, data=st.data()
)
@HTTP
def test_any_proof_body_is_answered_in_shape(
    watcher: ServedWatcher,
    registration: Registration,
    http: httpx.Client,
    body: bytes,
    value: Any,
    data: st.DataObject,
) -> None:
    headers = _bearer(registration)
    _answered(http.put(registration.proof_path, content=body, headers=headers), 200)
    proof: dict[str, Any] = watcher.proof_body(registration.params, 5)
    proof[data.draw(st.sampled_from(sorted(proof)))] = value
    _answered(http.put(registration.proof_path, json=proof, headers=headers), 200)


@given(
    channel=st.text(max_size=80) | st.just("0x" + "ab" * 32),
    party=st.text(max_size=50) | st.just("0x" + "ab" * 20),
    authorization=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
        str.strip
    ),
)
@HTTP
def test_any_proof_path_and_authorization_are_answered_in_shape(
    http: httpx.Client, channel: str, party: str, authorization: str
) -> None:
    path = f"/v1/channels/{quote(channel, safe='')}/proofs/{quote(party, safe='')}"
    response = http.put(path, content=b"{}", headers={"Authorization": authorization})
    _refused(response, 401, 404, 405, 422)  # 405: a decoded `/` made it another path


# -- the parsers, in process ----------------------------------------------------------------


@given(value=json_values, field=st.text(max_size=10))
@settings(FUZZ, max_examples=300)
def test_every_parser_returns_a_value_or_raises_invalid_input(value: Any, field: str) -> None:
    parsers: list[Callable[[], object]] = [
        lambda: parse_uint256(value, field),
        lambda: parse_int(value, field, 0, 2**63 - 1),
        lambda: parse_address(value, field),
        lambda: parse_signature(value, field),
        lambda: parse_channel_params(value, field),
        lambda: parse_object(value, field, frozenset({"a", "b"})),
        lambda: parse_channel_id(value, field) if isinstance(value, str) else None,
    ]
    refusals: list[InvalidInput] = []
    for parse in parsers:
        try:
            parse()
        except InvalidInput as refusal:
            refusals.append(refusal)
    assert all(refusal.status == 422 and refusal.field is not None for refusal in refusals)
