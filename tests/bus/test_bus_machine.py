"""The connection machine without a socket or a clock: every login rule and every
refusal, as inputs and outputs."""

from __future__ import annotations

import json

from m2mpay.bus.events import CommandAcknowledged
from m2mpay.bus.machine import (
    CLOSE_POLICY,
    MAX_BAD_MESSAGES,
    Close,
    Connection,
    ConnectionPhase,
    LoggedIn,
    LoginTimedOut,
    Received,
    Registered,
    Send,
    StatusReported,
    TelemetryReceived,
    open_connection,
    step,
)
from m2mpay.bus.messages import (
    ChallengeMessage,
    ErrorMessage,
    login_digest,
    parse_device_message,
)
from m2mpay.crypto import Address, PrivateKey

SERVER = PrivateKey(bytes([9]) * 32).address
DEVICE = PrivateKey(bytes([1]) * 32)
CHALLENGE = bytes(range(32))
NOW = 1_000_000


def _login(key: PrivateKey = DEVICE, *, challenge: bytes = CHALLENGE, **changes: str) -> str:
    signature = key.sign_digest(login_digest(SERVER, challenge, key.address))
    message = {
        "type": "login",
        "address": key.address.checksum,
        "challenge": "0x" + challenge.hex(),
        "signature": "0x" + signature.hex(),
    }
    return json.dumps(message | changes)


def _challenged(**kwargs: object) -> Connection:
    connection, (hello,) = open_connection(SERVER, CHALLENGE, NOW, 30_000, **kwargs)  # type: ignore[arg-type]
    assert isinstance(hello, Send)
    assert hello.message == ChallengeMessage(
        server=SERVER.checksum, challenge="0x" + CHALLENGE.hex(), expires_ms=NOW + 30_000
    )
    return connection


def _ready() -> Connection:
    connection, outputs = step(_challenged(), Received(_login(), NOW + 1))
    assert outputs == (LoggedIn(DEVICE.address),)
    assert connection.phase is ConnectionPhase.READY
    return connection


def _refused(outputs: tuple[object, ...]) -> str:
    """The code of a refused login, which must end the connection."""
    error, close = outputs
    assert isinstance(error, Send)
    assert isinstance(error.message, ErrorMessage)
    assert close == Close(CLOSE_POLICY, error.message.code)
    return error.message.code


def test_the_login_digest_is_bound_to_server_challenge_and_device() -> None:
    digest = login_digest(SERVER, CHALLENGE, DEVICE.address)
    assert digest != login_digest(DEVICE.address, CHALLENGE, DEVICE.address)
    assert digest != login_digest(SERVER, bytes(32), DEVICE.address)
    assert digest != login_digest(SERVER, CHALLENGE, SERVER)


def test_a_good_login_makes_the_connection_ready() -> None:
    assert _ready().device == DEVICE.address


def test_refused_logins_end_the_connection_and_name_the_reason() -> None:
    other = PrivateKey(bytes([2]) * 32)
    cases = {
        "bad_signature": _login(other, address=DEVICE.address.checksum),
        "wrong_challenge": _login(challenge=bytes(32)),
        "invalid_message": json.dumps({"type": "login", "address": DEVICE.address.checksum}),
        "not_logged_in": json.dumps({"type": "command_ack", "id": "0x" + "00" * 16}),
        "invalid_json": "{",
    }
    for code, message in cases.items():
        connection, outputs = step(_challenged(), Received(message, NOW + 1))
        assert _refused(outputs) == code
        assert connection.phase is ConnectionPhase.CLOSED
        assert step(connection, Received(_login(), NOW + 2)) == (connection, ())
    # A malleable (high-s) twin of a good signature is not a signature at all.
    good = json.loads(_login())
    raw = bytes.fromhex(good["signature"][2:])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (n - int.from_bytes(raw[32:64], "big")).to_bytes(32, "big")
    twin = raw[:32] + high_s + bytes([raw[64] ^ 1])
    _, outputs = step(_challenged(), Received(_login(signature="0x" + twin.hex()), NOW + 1))
    assert _refused(outputs) == "bad_signature"


def test_the_challenge_is_good_until_it_expires() -> None:
    connection = _challenged()
    assert step(connection, LoginTimedOut(NOW + 29_999)) == (connection, ())
    _, outputs = step(connection, LoginTimedOut(NOW + 30_000))
    assert _refused(outputs) == "challenge_expired"
    _, outputs = step(connection, Received(_login(), NOW + 30_000))
    assert _refused(outputs) == "challenge_expired"


def test_an_allow_list_keeps_strangers_out() -> None:
    connection = _challenged(allowed=frozenset({Address(bytes(20))}))
    _, outputs = step(connection, Received(_login(), NOW + 1))
    assert _refused(outputs) == "not_allowed"


def test_a_ready_connection_turns_messages_into_facts() -> None:
    connection = _ready()
    ack = json.dumps({"type": "command_ack", "id": "0x" + "ab" * 16, "ok": False, "error": "x"})
    _, outputs = step(connection, Received(ack, NOW))
    assert outputs == (CommandAcknowledged(DEVICE.address, bytes([0xAB]) * 16, False, "x"),)
    for message, kind in (
        ({"type": "device_status", "state": "idle"}, StatusReported),
        ({"type": "telemetry", "seq": 3, "at_ms": 4, "data": {"a": [1]}}, TelemetryReceived),
        (
            {
                "type": "device_register",
                "services": [
                    {"name": "light", "unit": "s", "price": "1", "asset": SERVER.checksum}
                ],
            },
            Registered,
        ),
    ):
        text = json.dumps(message)
        _, (output,) = step(connection, Received(text, NOW))
        assert isinstance(output, kind)
        assert output.message == parse_device_message(text)


def test_after_login_bad_messages_are_answered_until_too_many() -> None:
    connection = _ready()
    for n in range(1, MAX_BAD_MESSAGES):
        connection, (error,) = step(connection, Received(b"\xff", NOW))
        assert isinstance(error, Send)
        assert connection.bad_in_a_row == n
    # A good message in between forgives the run.
    calm, _ = step(connection, Received(json.dumps({"type": "device_status"}), NOW))
    assert calm.bad_in_a_row == 0
    connection, outputs = step(connection, Received("[]", NOW))
    assert outputs[-1] == Close(CLOSE_POLICY, "too many bad messages")
    assert connection.phase is ConnectionPhase.CLOSED
