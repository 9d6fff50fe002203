"""API bodies to the client's frozen dataclasses and back, driven by their field types.

The API writes amounts as integer strings and addresses as 0x-hex; Python callers
want `int` and `Address`. A field typed `Amount` (an `int` marked with `Annotated`)
is an integer string on the wire, an `Address` field is a checksummed address,
a nested dataclass an object, `tuple[X, ...]` an array; everything else passes as
is after a type check. Unknown keys are ignored, so a node that adds a field to an
answer does not break older clients; a missing field takes the dataclass default,
and a missing required field or a value of the wrong type raises
`MalformedMessage` (the node answered, but not in a form this client can read).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeVar, Union, get_args, get_origin

from m2mpay.crypto import Address
from m2mpay.errors import CryptoError, MalformedMessage

__all__ = ["Amount", "decode", "encode"]

T = TypeVar("T")


class _AmountMarker:
    """Marks an `int` field carried as an integer string (the smallest unit of an asset)."""

    def __repr__(self) -> str:
        return "Amount"


_AMOUNT_MARKER: Final = _AmountMarker()
_AMOUNT_TEXT: Final = re.compile(r"^(0|[1-9][0-9]{0,77})$")

Amount = Annotated[int, _AMOUNT_MARKER]


_FIELDS: dict[type[Any], tuple[tuple[str, Any, bool], ...]] = {}


def _fields(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, resolved type with markers, required) for each field of a dataclass;
    resolved once per class, as resolving type hints is slow."""
    known = _FIELDS.get(cls)
    if known is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        known = _FIELDS[cls] = tuple(
            (
                item.name,
                hints[item.name],
                item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING,
            )
            for item in dataclasses.fields(cls)
        )
    return known


def _bad(where: str, expected: str, value: Any) -> MalformedMessage:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    where = where or "body"
    return MalformedMessage(f"the node's answer: {where} should be {expected}, got {shown}")


def _decode(kind: Any, value: Any, where: str) -> Any:
    origin = get_origin(kind)
    if origin is Annotated:
        base, *marks = get_args(kind)
        if _AMOUNT_MARKER in marks:
            if isinstance(value, str) and _AMOUNT_TEXT.match(value):
                return int(value)
            raise _bad(where, "an integer string", value)
        return _decode(base, value, where)
    if origin in (Union, types.UnionType):  # the views only use `X | None`
        if value is None:
            return None
        (inner,) = [o for o in get_args(kind) if o is not type(None)]
        return _decode(inner, value, where)
    if origin is tuple:
        item_kind = get_args(kind)[0]
        if not isinstance(value, list):
            raise _bad(where, "an array", value)
        return tuple(_decode(item_kind, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        if value not in get_args(kind):
            raise _bad(where, " or ".join(map(repr, get_args(kind))), value)
        return value
    if origin in (dict, Mapping) or kind is Any:
        if kind is not Any and not isinstance(value, dict):
            raise _bad(where, "an object", value)
        return value
    if dataclasses.is_dataclass(kind):
        return decode(typing.cast(type[Any], kind), value, where)
    if kind is Address:
        try:
            return Address(value)
        except CryptoError:
            raise _bad(where, "an address", value) from None
    if kind is bool:
        if not isinstance(value, bool):
            raise _bad(where, "true or false", value)
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(where, "an integer", value)
        return value
    if kind is str:
        if not isinstance(value, str):
            raise _bad(where, "a string", value)
        return value
    raise TypeError(f"the client codec has no rule for {kind!r}")  # a bug here, not the node's


def decode(cls: type[T], value: Any, where: str = "") -> T:
    """Build `cls` (a dataclass) from a JSON object the API answered; see the module doc."""
    if not isinstance(value, dict):
        raise _bad(where, "an object", value)
    args: dict[str, Any] = {}
    for name, kind, required in _fields(cls):
        path = f"{where}.{name}" if where else name
        if name in value:
            args[name] = _decode(kind, value[name], path)
        elif required:
            raise MalformedMessage(f"the node's answer has no `{path}`")
    return cls(**args)


def _encode(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if get_origin(kind) is Annotated:
        base, *marks = get_args(kind)
        return str(value) if _AMOUNT_MARKER in marks else _encode(base, value)
    if get_origin(kind) in (Union, types.UnionType):
        (inner,) = [o for o in get_args(kind) if o is not type(None)]
        return _encode(inner, value)
    if get_origin(kind) is tuple:
        item_kind = get_args(kind)[0]
        return [_encode(item_kind, v) for v in value]
    if dataclasses.is_dataclass(kind):
        return encode(value)
    if kind is Address:
        return Address(value).checksum
    return value


def encode(obj: Any) -> dict[str, Any]:
    """The API's JSON form of a client dataclass: amounts as integer strings."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"not a dataclass instance: {obj!r}")
    return {name: _encode(kind, getattr(obj, name)) for name, kind, _ in _fields(type(obj))}
