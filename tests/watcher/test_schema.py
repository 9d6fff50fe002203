"""schemathesis against a real `m2mpay watcher serve` process and its /openapi.json:
generated requests to every operation find no server error and no answer that breaks
the schema (every check schemathesis has, but that a schema-valid request be accepted:
a registration or a proof must also carry a valid signature, which generation cannot
make). The stateful run follows the schema's links from a registration to the proof
updates its token allows and to the channel it created; a share of its registrations
and proofs are signed for real, so those links lead somewhere.

(Operations are walked by hand, as in tests/api/test_schema.py.)"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Final

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode

from m2mpay.watcher.core import ChannelParams
from tests.watcher.served import Registration, ServedWatcher, channel, served_watcher

pytestmark = pytest.mark.timeout(240)

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]

EXAMPLES: Final = 50
STATEFUL_SCENARIOS: Final = 15
STATEFUL_STEPS: Final = 6
BASE: Final = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def watcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedWatcher]:
    with served_watcher(tmp_path_factory.mktemp("schema")) as served:
        yield served


@pytest.fixture(scope="module")
def registration(watcher: ServedWatcher) -> Registration:
    return watcher.register(nonce=1)


def _schema(watcher: ServedWatcher) -> Any:
    return schemathesis.openapi.from_url(f"{watcher.url}/openapi.json")


def _operations(watcher: ServedWatcher) -> dict[str, Operation]:
    operations = {}
    for result in _schema(watcher).get_all_operations():
        assert isinstance(result, Ok), result  # the schema itself must load cleanly
        operation = result.ok()
        operations[operation.definition.raw["operationId"]] = operation
    return operations


def test_the_schema_names_every_operation_and_links_a_registration_onwards(
    watcher: ServedWatcher,
) -> None:
    operations = _operations(watcher)
    assert set(operations) == {"get_info", "register", "put_proof", "get_channel", "get_disputes"}
    links = operations["register"].definition.raw["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {"put_proof", "get_channel"}


def _strategies(operation: Operation, registration: Registration) -> list[Any]:
    """Positive and negative cases; for the routes behind a token, also positive cases
    with the token, half of them on the registered channel (past the 404)."""
    strategies = [operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)]
    name = operation.definition.raw["operationId"]
    token = {"Authorization": f"Bearer {registration.token}"}
    at = {"channel_id": registration.channel_id, "party": registration.params.b.checksum}
    if name == "put_proof":
        strategies += [
            operation.as_strategy(headers=token),
            operation.as_strategy(headers=token, path_parameters=at),
        ]
    elif name == "get_channel":
        strategies.append(operation.as_strategy(path_parameters={"channel_id": at["channel_id"]}))
    return strategies


def test_no_server_error_and_every_answer_fits_the_schema(
    watcher: ServedWatcher, registration: Registration
) -> None:
    for operation in _operations(watcher).values():

        @given(case=st.one_of(_strategies(operation, registration)))
        @settings(BASE, max_examples=EXAMPLES)
        def check(case: Case) -> None:
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


def _coin(case: Case) -> bool:
    # Decided by the generated case itself, so hypothesis replays the same choice.
    return hash(repr((case.path_parameters, case.body))) % 2 == 0


def test_stateful_registration_then_token_then_proofs(watcher: ServedWatcher) -> None:
    nonces = itertools.count(1000)
    signed: dict[str, ChannelParams] = {}  # channel id → params, for what was made valid
    followed: list[str] = []
    stored: list[int] = []  # statuses of proof updates the machine made valid

    class Watching(_schema(watcher).as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Case) -> None:
            # Generation cannot sign: every other registration and proof is made
            # valid here, so the links lead to a token and the token to stored proofs.
            operation_id = case.operation.definition.raw["operationId"]
            if operation_id == "register" and _coin(case):
                fresh = channel(next(nonces))
                signed["0x" + fresh.id.hex()] = fresh
                case.body = dict(watcher.registration_body(fresh))
            elif operation_id == "put_proof":
                path: dict[str, Any] = dict(case.path_parameters or {})
                headers: dict[str, Any] = dict(case.headers or {})
                params = signed.get(str(path.get("channel_id")))
                authorization = str(headers.get("Authorization", ""))
                # Generation may replace what the link carried: only the registered
                # party (b) with a bearer token is a proof update that can be valid.
                party = str(path.get("party", "")).lower()
                if (
                    params is not None
                    and party == params.b.checksum.lower()
                    and authorization.startswith("Bearer ")
                ):
                    followed.append(params.id.hex())  # reached through the link
                    if _coin(case):
                        case.body = dict(watcher.proof_body(params, next(nonces)))
                        stored.append(0)

        def after_call(self, response: Any, case: Case) -> None:
            if stored and stored[-1] == 0:
                stored[-1] = response.status_code

        def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
            case.validate_response(
                response, excluded_checks=[positive_data_acceptance], transport_kwargs=kwargs
            )

    Watching.run(
        settings=settings(BASE, max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS)
    )
    assert signed, "no registration was made valid"
    assert followed, "no scenario followed a registration's link to a proof update"
    # A signed proof sent with the token the link carried is stored (or, when the
    # link's token was generated over, refused by its token).
    assert 200 in stored, stored
    assert set(stored) <= {200, 401}, stored


def test_without_the_token_a_proof_update_is_refused(
    watcher: ServedWatcher, registration: Registration
) -> None:
    operation = _operations(watcher)["put_proof"]

    @given(case=operation.as_strategy())
    @settings(BASE, max_examples=10)
    def check(case: Case) -> None:
        case.path_parameters = {
            "channel_id": registration.channel_id,
            "party": registration.params.b.checksum,
        }
        if case.headers is not None:
            case.headers.pop("Authorization", None)
        answer = case.call()
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "missing_token"

    check()
