"""The device bus's WebSocket protocol as an AsyncAPI 3.0 document, made from the very
message models the bus parses and writes (`m2mpay.bus.messages`), so it lists what
the bus really accepts and sends. Served at /asyncapi.json beside /openapi.json.

Operations are seen from the bus: it `receive`s what devices send and `send`s the rest.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final, get_args

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from m2mpay.api import examples as ex
from m2mpay.bus import messages
from m2mpay.bus.messages import PROTOCOL, BusMessage, DeviceMessage

__all__ = ["ASYNCAPI_VERSION", "BUS_PATH", "bus_asyncapi"]

ASYNCAPI_VERSION: Final = "3.0.0"
BUS_PATH: Final = "/v1/devices/ws"
_CHANNEL: Final = "devices"

# One line and one example a message type; a type without them fails here, and so in
# the tests.
_SUMMARIES: Final = {
    "challenge": "The bus speaks first: sign this challenge to log in before `expires_ms`.",
    "login": "The device's address and its signature over `login_digest`.",
    "welcome": "Logged in: where telemetry goes on, how many commands are pending.",
    "device_register": "The device names itself and the services it sells.",
    "registered": "The services the bus now knows for this device.",
    "command": "Deliver up to `until_units` in a session (`on`), stop (`off`) or forget it "
    "(`end`); idempotent.",
    "command_ack": "The device took a command, or says why not.",
    "device_status": "The device's state and its meter: units delivered per session.",
    "telemetry": "One measurement, numbered by the device; stored and anchored on chain.",
    "telemetry_ack": "A telemetry record is stored (or was, if `duplicate`).",
    "error": "The bus refused a message: `code`, `message` and the `ref`'d type.",
}

# One message of each type, from a charge point selling energy in the examples' session.
_COMMAND_ID: Final = "0x" + "5e" * 16
_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "challenge": {
        "protocol": PROTOCOL,
        "server": ex.CHARGER,
        "challenge": ex.CHANNEL_ID,
        "expires_ms": ex.STARTED_MS + 30_000,
    },
    "login": {"address": ex.CHARGE_POINT, "challenge": ex.CHANNEL_ID, "signature": ex.SIGNATURE},
    "welcome": {"device": ex.CHARGE_POINT, "telemetry_seq": 41, "pending": 0, "services": []},
    "device_register": {
        "name": "bay 2 charger",
        "services": [
            {
                "name": "charging",
                "unit": "Wh",
                "price": "250000000000000",
                "asset": ex.TOKEN,
                "kind": "energy",
            }
        ],
    },
    "registered": {"services": ["charging"]},
    "command": {
        "id": _COMMAND_ID,
        "session": ex.SESSION_ID,
        "service": "charging",
        "action": "on",
        "until_units": 50,
        "units": 50,
    },
    "command_ack": {"id": _COMMAND_ID, "ok": True},
    "device_status": {
        "state": "charging",
        "sessions": [
            {"session": ex.SESSION_ID, "service": "charging", "delivered": 27, "active": True}
        ],
        "detail": {"power_w": 11000},
    },
    "telemetry": {"seq": 42, "at_ms": ex.STARTED_MS + 60_000, "data": {"power_w": 11000}},
    "telemetry_ack": {"seq": 42, "duplicate": False},
    "error": {
        "code": "invalid_message",
        "message": "seq: Input should be a valid integer",
        "ref": "telemetry",
    },
}


def _models(union: Any) -> list[type[BaseModel]]:
    return list(get_args(union))


def _type_of(model: type[BaseModel]) -> str:
    kind = model.model_fields["type"].default
    assert isinstance(kind, str)
    return kind


@cache
def _components() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(channel messages, operations, components) of the bus, host aside."""
    directions = (("receive", _models(DeviceMessage)), ("send", _models(BusMessage)))
    models = [model for _, group in directions for model in group]
    _, top = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top["$defs"]
    channel_messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    component_messages: dict[str, Any] = {}
    for action, group in directions:
        for model in group:
            kind = _type_of(model)
            # `type` has a default in the models, but the parser tells messages apart by it.
            schema = schemas[model.__name__]
            schema["required"] = ["type", *schema.get("required", [])]
            component_messages[kind] = {
                "name": kind,
                "title": f"{'device → bus' if action == 'receive' else 'bus → device'}: {kind}",
                "summary": _SUMMARIES[kind],
                "contentType": "application/json",
                "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
                "examples": [{"payload": {"type": kind, **_EXAMPLES[kind]}}],
            }
            channel_messages[kind] = {"$ref": f"#/components/messages/{kind}"}
            operations[kind] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{_CHANNEL}"},
                "summary": _SUMMARIES[kind],
                "messages": [{"$ref": f"#/channels/{_CHANNEL}/messages/{kind}"}],
            }
    return channel_messages, operations, {"messages": component_messages, "schemas": schemas}


def bus_asyncapi(*, host: str, protocol: str = "ws") -> dict[str, Any]:
    """The document for a bus reached at `protocol://host` + `BUS_PATH`."""
    channel_messages, operations, components = _components()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "m2mpay device bus",
            "version": PROTOCOL,
            "description": messages.__doc__ or "",
        },
        "defaultContentType": "application/json",
        "servers": {"node": {"host": host, "protocol": protocol}},
        "channels": {
            _CHANNEL: {
                "address": BUS_PATH,
                "title": "A device's connection to its node's bus",
                "description": "One WebSocket per device, JSON text frames of at most "
                f"{messages.MAX_MESSAGE_BYTES} bytes, each with a `type`.",
                "messages": channel_messages,
            }
        },
        "operations": operations,
        "components": components,
    }
