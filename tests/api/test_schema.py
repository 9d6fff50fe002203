"""schemathesis against a running daemon's /openapi.json: generated requests to every
operation, with the token, find no server error and no answer that breaks the schema;
without the token, every operation but the public ones is refused.

(The operations are walked by hand rather than through schemathesis's pytest plugin,
whose lazy fixture loading does not work with this pytest.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from m2mpay.bench.daemons import NodeProcess
from m2mpay.crypto import Address
from m2mpay.provenance import SqliteStreamStore, StreamWriter
from tests.api.conftest import funded_channel
from tests.provenance.streams_kit import AUTHOR, Clock, records

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]
PUBLIC = {
    ("GET", "/v1/info"),
    ("GET", "/v1/offers"),
    ("GET", "/v1/feeds"),
    ("GET", "/v1/feeds/{feed_id}"),
    # A provenance stream known by its id: what its QR code gives anyone.
    ("GET", "/v1/streams/{stream_id}"),
    ("GET", "/v1/streams/{stream_id}.jsonl"),
    ("GET", "/v1/streams/{stream_id}/messages"),
}

# Addresses the API accepts: lower case or EIP-55 checksummed (see models.Address).
schemathesis.openapi.format(
    "eip55-address",
    st.binary(min_size=20, max_size=20).map(
        lambda raw: Address(raw).checksum if raw[0] % 2 else "0x" + raw.hex()
    ),
)
STREAMS = {"/v1/events"}  # never ends by design: tested where it is read


async def _a_stream(path: Path) -> None:
    """A restricted stream in the node's store, for the links from the listing to reach."""
    async with SqliteStreamStore(path) as store:
        writer = await StreamWriter.create(store, AUTHOR, purpose="schema", now_ms=Clock())
        await writer.append_many(records(3))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("schema") / "node"
    data_dir.mkdir()
    asyncio.run(_a_stream(data_dir / "streams.db"))
    node = NodeProcess(data_dir)
    node.start()
    yield node
    node.stop()


def _operations(daemon: NodeProcess) -> list[Operation]:
    schema = schemathesis.openapi.from_url(f"{daemon.url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema itself must load cleanly
        operations.append(result.ok())
    return [op for op in operations if op.path not in STREAMS]


def test_no_server_error_and_every_answer_fits_the_schema(daemon: NodeProcess) -> None:
    headers = {"Authorization": f"Bearer {daemon.ready['api_token']}"}
    operations = _operations(daemon)
    assert len(operations) >= 15
    assert {op.path for op in operations} >= {
        "/v1/streams",
        "/v1/streams/{stream_id}",
        "/v1/streams/{stream_id}.jsonl",
        "/v1/streams/{stream_id}/messages",
        "/v1/streams/{stream_id}/verify",
        "/v1/streams/{stream_id}/qr.svg",
        "/v1/streams/{stream_id}/qr.png",
        "/v1/streams/{stream_id}/reader",
        "/v1/sessions/{session_id}/qr",
        "/v1/channels/{channel_id}/deposits",
        "/v1/tokens",
        "/v1/tokens/{address}",
        "/v1/dex/pools",
        "/v1/dex/quote",
        "/v1/dex/swaps",
        "/v1/dex/liquidity",
        "/v1/dex/liquidity/removals",
        "/v1/registry/services",
        "/v1/registry/services/{listing_id}",
        "/v1/registry/services/{listing_id}/offer",
        "/v1/registry/ratings",
        "/v1/registry/scores/{address}",
        "/v1/storefront",
        "/v1/explorer/blocks",
        "/v1/explorer/blocks/{number_or_hash}",
        "/v1/explorer/transactions/{tx_hash}",
        "/v1/explorer/addresses/{address}",
        "/v1/explorer/channels/{channel_id}",
        "/v1/explorer/search",
        "/v1/peers",
        "/v1/channels/{channel_id}/commitments",
        "/v1/watcher/disputes",
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Case) -> None:
            # A valid request may still be refused by meaning (a peer with no known
            # endpoint, a price above the buyer's limit): that check is not ours to pass.
            case.headers.update(headers)  # see Workflow.before_call
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


def test_the_stream_routes_answer_of_a_stream_the_node_holds_within_the_schema(
    daemon: NodeProcess,
) -> None:
    """Generated ids are unknown ones (404): the same operations again on the stream the
    node holds, every generated query with it answered 200 and within the schema."""
    headers = {"Authorization": f"Bearer {daemon.ready['api_token']}"}
    listed = httpx.get(f"{daemon.url}/v1/streams", headers=headers, timeout=60)
    (stream_id,) = [s["stream_id"] for s in listed.json()["streams"]]
    operations = [op for op in _operations(daemon) if "{stream_id}" in op.path]
    assert len(operations) == 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Case) -> None:
            case.path_parameters["stream_id"] = stream_id
            case.headers.update(headers)
            response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
            assert response.status_code == 200, (case.path, response.text)

        check()


def _without_token(operation: Operation) -> Callable[[], None]:
    public = (operation.method.upper(), operation.path) in PUBLIC

    @given(case=operation.as_strategy())
    @settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Case) -> None:
        # Whatever schemathesis made up for the declared bearer scheme goes: no token at all.
        case.headers.pop("Authorization", None)
        response = case.call()
        if public:
            # A public read of one thing: its answer, or 404 for an id the node does not know.
            assert response.status_code in ({200, 404} if "{" in operation.path else {200})
        else:
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "unauthorized"

    return check


def test_without_the_token_only_the_storefront_answers(daemon: NodeProcess) -> None:
    for operation in _operations(daemon):
        _without_token(operation)()


def test_linked_operations_in_sequence_keep_every_answer_in_the_schema(
    daemon: NodeProcess, tmp_path: Path
) -> None:
    """Stateful: schemathesis follows the links it infers from the schema (a channel
    listed or opened → shown, paid, closed; a session → stopped, priced, reversed; an
    offer → withdrawn) with ids the node really holds: an open channel to a second node
    on the same chain is there from the start."""
    token = daemon.ready["api_token"]
    peer = NodeProcess(tmp_path / "peer", "--chain-dir", str(daemon.data_dir))
    peer.start()
    try:
        with httpx.Client(
            base_url=daemon.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api:
            funded_channel(api, peer)
        schema = schemathesis.openapi.from_url(f"{daemon.url}/openapi.json")
        # The schema declares the bearer scheme: left to itself, schemathesis would make
        # up the token (or leave it out) in its own cases, and whole runs would end at 401.
        schema.config.update(headers={"Authorization": f"Bearer {token}"})
        schema.config.generation.update(with_security_parameters=False)
        steps: list[tuple[str, int]] = []

        class Workflow(schema.as_state_machine()):  # type: ignore[misc]
            def after_call(self, response: Any, case: Case) -> None:
                steps.append((f"{case.method} {case.path}", response.status_code))

            def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
                # As above: a valid request may still be refused by meaning.
                case.validate_response(
                    response, excluded_checks=[positive_data_acceptance], transport_kwargs=kwargs
                )

        Workflow.run(
            settings=settings(
                max_examples=15,
                stateful_step_count=6,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    finally:
        peer.stop()
    assert len(steps) >= 15
    assert all(status < 500 for _, status in steps), steps
    reached = {step for step, status in steps if status < 300 and "{channel_id}" in step}
    assert reached, steps  # the links led to the real channel, not only to 404s
