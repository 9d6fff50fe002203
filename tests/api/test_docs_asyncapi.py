"""The device bus's AsyncAPI document: it lists every message type the bus accepts and
sends (as the bus's own parsers name them), its references resolve, and a real
conversation with a bus over a WebSocket fits it, frame by frame, both ways."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs
import pytest

from m2mpay.api.asyncapi import ASYNCAPI_VERSION, BUS_PATH, bus_asyncapi
from m2mpay.bus.messages import BadMessage, parse_bus_message, parse_device_message
from m2mpay.crypto import PrivateKey
from tests.api.conftest import ApiFactory
from tests.bus.conftest import (  # noqa: F401 (fixtures)
    BusFactory,
    DeviceFactory,
    connect_device,
    make_bus,
)

LAMP = PrivateKey(bytes([1]) * 32)


def _types_named_by(parse: Any) -> set[str]:
    """The message types a parser takes, from its own refusal of an unknown type."""
    with pytest.raises(BadMessage) as refused:
        parse('{"type": "no such type"}')
    assert refused.value.code == "unknown_type"
    listed = re.search(r"expected one of (.+)$", refused.value.message)
    assert listed is not None
    return set(listed[1].split(", "))


def _operations(document: dict[str, Any], action: str) -> set[str]:
    found = set()
    for operation in document["operations"].values():
        if operation["action"] == action:
            for ref in operation["messages"]:
                found.add(_pointer(document, ref["$ref"])["name"])
    return found


def _pointer(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    while "$ref" in node:  # a channel's message refers on to the component
        node = _pointer(document, node["$ref"])
    assert isinstance(node, dict)
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [r for k, v in node.items() for r in ([v] if k == "$ref" else _refs(v))]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_it_lists_every_message_the_bus_accepts_and_sends() -> None:
    document = bus_asyncapi(host="node.test:8402")
    assert document["asyncapi"] == ASYNCAPI_VERSION
    accepted = _types_named_by(parse_device_message)
    sent = _types_named_by(parse_bus_message)
    assert {"login", "telemetry", "command_ack"} <= accepted
    assert {"challenge", "command", "error"} <= sent
    assert _operations(document, "receive") == accepted
    assert _operations(document, "send") == sent
    assert set(document["channels"]["devices"]["messages"]) == accepted | sent
    for ref in _refs(document):
        _pointer(document, ref)  # every reference resolves
    for message in document["components"]["messages"].values():
        assert message["summary"]
        payload = _pointer(document, message["payload"]["$ref"])
        assert payload["required"][0] == "type"
        assert payload["properties"]["type"]["const"] == message["name"]


@pytest.mark.parametrize("kind", sorted(bus_asyncapi(host="h")["components"]["messages"]))
def test_each_example_is_a_message_the_bus_would_take(kind: str) -> None:
    """Valid by the document's schema and by the bus's (or the device's) own parser."""
    document = bus_asyncapi(host="node.test:8402")
    message = document["components"]["messages"][kind]
    (example,) = message["examples"]
    _validator(document, example["payload"]).validate(example["payload"])
    payload = example["payload"]
    sender = parse_device_message if message["title"].startswith("device") else parse_bus_message
    parsed = sender(httpx.Response(200, json=payload).content).model_dump(mode="json")
    assert parsed == {**parsed, **payload}


def _validator(document: dict[str, Any], message: dict[str, Any]) -> Any:
    """Checks a frame against the payload schema the document gives its `type`."""
    schema_ref = document["components"]["messages"][message["type"]]["payload"]["$ref"]
    return jsonschema_rs.validator_for({"$ref": schema_ref, "components": document["components"]})


async def test_a_real_conversation_fits_the_document_both_ways(
    make_bus: BusFactory,  # noqa: F811
    connect_device: DeviceFactory,  # noqa: F811
) -> None:
    document = bus_asyncapi(host="node.test:8402")
    host = await make_bus()
    device = await connect_device(host.url, LAMP)
    frames: list[tuple[str, dict[str, Any]]] = [("send", device.challenge)]

    async def said(message: dict[str, Any]) -> None:
        frames.append(("receive", message))
        await device.send(message)

    async def heard(kind: str) -> dict[str, Any]:
        message = await device.expect(kind)
        frames.append(("send", message))
        return message

    await said(device.login_message())
    await heard("welcome")
    await said(
        {
            "type": "device_register",
            "name": "hall lamp",
            "services": [
                {"name": "light", "unit": "s", "price": "1000", "asset": "0x" + "ab" * 20}
            ],
        }
    )
    await heard("registered")
    supply = host.bus.supply_for(device.address, "light", bytes(range(32)))
    await supply.start(lambda _: None, 0)
    supply.permit(5)
    command = await heard("command")
    await said({"type": "command_ack", "id": command["id"], "ok": True})
    session = {"session": command["session"], "service": "light", "delivered": 2, "active": True}
    await said({"type": "device_status", "state": "on", "sessions": [session], "detail": {}})
    await said({"type": "telemetry", "seq": 1, "at_ms": 1_767_225_600_000, "data": {"lux": 800}})
    await heard("telemetry_ack")
    await said({"type": "telemetry", "seq": "one", "at_ms": 0, "data": {}})
    await heard("error")

    directions = {(way, message["type"]) for way, message in frames}
    every = {("receive", t) for t in _operations(document, "receive")}
    every |= {("send", t) for t in _operations(document, "send")}
    assert directions == every  # the conversation used every message, each in its direction
    for way, message in frames:
        if message.get("seq") == "one":  # the malformed one the bus refused
            assert not _validator(document, message).is_valid(message)
            continue
        _validator(document, message).validate(message)
        assert (way, message["type"]) in every


async def test_the_node_serves_it_beside_its_openapi(make_api: ApiFactory) -> None:
    api = await make_api(1)
    response = await api.anonymous.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["servers"]["node"] == {"host": "node.test", "protocol": "ws"}
    assert document["channels"]["devices"]["address"] == BUS_PATH
    openapi = (await api.anonymous.get("/openapi.json")).json()
    assert "/asyncapi.json" in openapi["info"]["description"]
    assert document == httpx.Response(200, json=bus_asyncapi(host="node.test")).json()
