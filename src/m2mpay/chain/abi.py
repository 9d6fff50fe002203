"""Encoding calls and decoding results and events from a contract's ABI, with eth-abi."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.abi import (
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)

from m2mpay.chain.ledger import LogEntry
from m2mpay.errors import ContractError

__all__ = ["ContractInterface", "DecodedCall", "DecodedEvent"]


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DecodedCall:
    """A call's function and its arguments by name."""

    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Function:
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    name: str = ""
    inputs: tuple[dict[str, Any], ...] = ()  # the ABI's fields, for names of tuples' parts


@dataclass(frozen=True, slots=True)
class _Event:
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type) in topic order
    data: tuple[tuple[str, str], ...]
    data_types: tuple[str, ...]


def _named(value: Any, field: dict[str, Any]) -> Any:
    """A decoded value with its tuples (structs) as dicts by their components' names."""
    kind = str(field.get("type", ""))
    if not kind.startswith("tuple"):
        return value
    inner = {**field, "type": kind[: kind.rindex("[")]} if kind.endswith("]") else None
    if inner is not None:
        return [_named(item, inner) for item in value]
    parts = field.get("components", ())
    return {
        part.get("name") or f"arg{i}": _named(item, part)
        for i, (part, item) in enumerate(zip(parts, value, strict=True))
    }


class ContractInterface:
    """A contract's functions and events, looked up by name."""

    def __init__(self, abi: Sequence[dict[str, Any]]) -> None:
        self._functions: dict[str, _Function] = {}
        self._functions_by_selector: dict[bytes, _Function] = {}
        self._events_by_topic: dict[bytes, _Event] = {}
        self._topics: dict[str, bytes] = {}
        self._constructor_types: tuple[str, ...] = ()
        for item in abi:
            kind = item.get("type")
            if kind == "function":
                function = _Function(
                    function_abi_to_4byte_selector(item),  # type: ignore[arg-type]
                    tuple(get_abi_input_types(item)),  # type: ignore[arg-type]
                    tuple(get_abi_output_types(item)),  # type: ignore[arg-type]
                    item["name"],
                    tuple(item["inputs"]),
                )
                self._functions[item["name"]] = function
                self._functions_by_selector[function.selector] = function
            elif kind == "constructor":
                self._constructor_types = tuple(get_abi_input_types(item))  # type: ignore[arg-type]
            elif kind == "event":
                topic = event_abi_to_log_topic(item)  # type: ignore[arg-type]
                types = get_abi_input_types(item)  # type: ignore[arg-type]
                pairs = [
                    (field["name"], t, bool(field.get("indexed")))
                    for field, t in zip(item["inputs"], types, strict=True)
                ]
                data = tuple((n, t) for n, t, indexed in pairs if not indexed)
                self._events_by_topic[topic] = _Event(
                    item["name"],
                    tuple((n, t) for n, t, indexed in pairs if indexed),
                    data,
                    tuple(t for _, t in data),
                )
                self._topics[item["name"]] = topic

    def _function(self, name: str) -> _Function:
        try:
            return self._functions[name]
        except KeyError:
            raise ContractError(f"the contract has no function {name!r}") from None

    def encode_call(self, name: str, *args: Any) -> bytes:
        fn = self._function(name)
        return fn.selector + encode(fn.input_types, args)

    def decode_call(self, data: bytes) -> DecodedCall | None:
        """The function a call's data names and its arguments; None for data that names
        none of this contract's functions. Arguments that do not decode raise eth-abi's
        errors, as `decode_event` does."""
        function = self._functions_by_selector.get(data[:4]) if len(data) >= 4 else None
        if function is None:
            return None
        values = decode(function.input_types, data[4:])
        return DecodedCall(
            function.name,
            {
                field.get("name") or f"arg{i}": _named(value, field)
                for i, (field, value) in enumerate(zip(function.inputs, values, strict=True))
            },
        )

    def decode_output(self, name: str, data: bytes) -> tuple[Any, ...]:
        return tuple(decode(self._function(name).output_types, data))

    def encode_constructor(self, *args: Any) -> bytes:
        return encode(self._constructor_types, args) if self._constructor_types else b""

    @property
    def selectors(self) -> list[bytes]:
        """Every function's 4-byte selector."""
        return list(self._functions_by_selector)

    @property
    def event_topics(self) -> list[bytes]:
        """Every event's topic 0."""
        return list(self._events_by_topic)

    def event_topic(self, name: str) -> bytes:
        try:
            return self._topics[name]
        except KeyError:
            raise ContractError(f"the contract has no event {name!r}") from None

    def decode_event(self, log: LogEntry) -> DecodedEvent | None:
        """Decode a log of this contract; None for a log it did not declare."""
        if not log.topics:
            return None
        event = self._events_by_topic.get(log.topics[0])
        if event is None or len(log.topics) - 1 != len(event.indexed):
            return None
        args: dict[str, Any] = {}
        for (name, abi_type), topic in zip(event.indexed, log.topics[1:], strict=True):
            args[name] = decode([abi_type], topic)[0]
        values = decode(event.data_types, log.data)
        for (name, _), value in zip(event.data, values, strict=True):
            args[name] = value
        return DecodedEvent(event.name, args)
