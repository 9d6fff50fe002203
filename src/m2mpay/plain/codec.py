"""Plain-data form of protocol values, shared by the wire codecs and the store.

A frozen dataclass registered with `@plain_type("name")` converts to a dict of
plain values and back. There are two renderings of the same dict:

- binary (CBOR on the wire, the store): bytes stay bytes, integers stay integers;
- text (JSON): bytes become 0x-hex, 256-bit amounts become decimal strings, as
  every m2mpay API writes amounts.

Decoding validates every field against its declared type, so a peer's bytes
that do not fit raise `MalformedMessage` and build nothing. Field types say
their bounds with `Annotated` markers: `Uint256` (amounts), `Uint64` (counters,
milliseconds), `Bytes32` (ids), `Text` (bounded strings).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeVar, Union, get_args, get_origin

from m2mpay.crypto import Address, Signature
from m2mpay.errors import CryptoError
from m2mpay.plain.scalars import (
    _address_decoder,
    _bool_decoder,
    _bytes_decoder,
    _fail,
    _hex,
    _identity,
    _int_decoder,
    _Length,
    _MaxLength,
    _shown,
    _signature_decoder,
    _str_decoder,
    _UInt,
    _uint_decoder,
)

__all__ = [
    "from_plain",
    "plain_type",
    "registered_types",
    "to_plain",
    "type_name",
]

T = TypeVar("T")

TYPE_KEY: Final = "t"


Encoder = Callable[[Any], Any]
Decoder = Callable[[Any, str], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    binary: Encoder
    text: Encoder
    decode: Decoder
    required: bool


_registry: dict[str, type[Any]] = {}
_names: dict[type[Any], str] = {}
_specs: dict[type[Any], tuple[_FieldSpec, ...]] = {}


def plain_type(name: str) -> Callable[[type[T]], type[T]]:
    """Register a frozen dataclass under `name` (the `t` of its plain form)."""

    def register(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        if name in _registry and _registry[name] is not cls:
            raise TypeError(f"plain type name {name!r} is taken by {_registry[name].__name__}")
        _registry[name] = cls
        _names[cls] = name
        return cls

    return register


def registered_types() -> dict[str, type[Any]]:
    return dict(_registry)


def type_name(obj: object) -> str:
    try:
        return _names[type(obj)]
    except KeyError:
        raise TypeError(f"{type(obj).__name__} is not a registered plain type") from None


def _codecs_for(hint: Any) -> tuple[Encoder, Encoder, Decoder]:
    """(binary encoder, text encoder, decoder) for one declared field type."""
    origin = get_origin(hint)
    if origin is Annotated:
        base, *markers = get_args(hint)
        for marker in markers:
            if isinstance(marker, _UInt) and base is int:
                text: Encoder = str if marker.bits > 64 else _identity
                return _identity, text, _uint_decoder(marker.bits)
            if isinstance(marker, _Length) and base is bytes:
                return bytes, _hex, _bytes_decoder(marker.size)
            if isinstance(marker, _MaxLength) and base is str:
                return _identity, _identity, _str_decoder(marker.size)
            if isinstance(marker, _MaxLength) and base is bytes:
                return bytes, _hex, _bytes_decoder(None, marker.size)
        return _codecs_for(base)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if len(options) > 1:
            return _tagged_union(tuple(options), optional=len(options) < len(get_args(hint)))
        binary, text, decode = _codecs_for(options[0])

        def optional_decode(value: Any, path: str) -> Any:
            return None if value is None else decode(value, path)

        return (
            lambda v: None if v is None else binary(v),
            lambda v: None if v is None else text(v),
            optional_decode,
        )
    if origin is tuple:
        args = get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"only tuple[X, ...] is supported, got {hint!r}")
        item_binary, item_text, item_decode = _codecs_for(args[0])

        def tuple_decode(value: Any, path: str) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise _fail(path, f"expected a list, got {type(value).__name__}")
            if len(value) > 10_000:
                raise _fail(path, "list too long")
            return tuple(item_decode(item, f"{path}[{i}]") for i, item in enumerate(value))

        return (
            lambda v: [item_binary(i) for i in v],
            lambda v: [item_text(i) for i in v],
            tuple_decode,
        )
    if hint is Address:
        return bytes, lambda v: v.checksum, _address_decoder
    if hint is Signature:
        return bytes, _hex, _signature_decoder
    if hint is bytes:
        return bytes, _hex, _bytes_decoder(None)
    if hint is bool:
        return _identity, _identity, _bool_decoder
    if hint is int:
        return _identity, _identity, _int_decoder
    if hint is str:
        return _identity, _identity, _str_decoder(None)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        enum_type = hint

        def enum_decode(value: Any, path: str) -> Any:
            try:
                return enum_type(value)
            except ValueError:
                raise _fail(path, f"not a valid {enum_type.__name__}: {_shown(value)}") from None

        return lambda v: v.value, lambda v: v.value, enum_decode
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        nested = hint

        # Looked up at call time: the nested class's encoder is built on first use.
        def nested_binary(value: Any) -> dict[str, Any]:
            return _encoder(nested, True, False)(value)

        def nested_text(value: Any) -> dict[str, Any]:
            return _encoder(nested, False, False)(value)

        return (
            nested_binary,
            nested_text,
            lambda value, path: _decode_fields(nested, value, path),
        )
    raise TypeError(f"unsupported field type {hint!r}")


def _tagged_union(options: tuple[Any, ...], *, optional: bool) -> tuple[Encoder, Encoder, Decoder]:
    """A field holding one of several registered dataclasses travels with its type tag."""
    if not all(isinstance(o, type) and dataclasses.is_dataclass(o) for o in options):
        raise TypeError(f"unions must be of dataclasses, got {options!r}")

    def decode(value: Any, path: str) -> Any:
        if value is None and optional:
            return None
        # The tag is checked before anything is built: decoding first and checking
        # after would let a peer nest any registered type in any other, as deep as
        # its parser allows (and endlessly through a cyclic CBOR value).
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, got {type(value).__name__}")
        name = value.get(TYPE_KEY)
        if not isinstance(name, str):
            raise _fail(path, "missing type tag")
        cls = _registry.get(name)
        if cls is None or cls not in options:
            raise _fail(path, f"{_shown(name)} is not allowed here")
        return _decode_fields(cls, value, name)

    return (
        lambda v: None if v is None else to_plain(v, binary=True),
        lambda v: None if v is None else to_plain(v, binary=False),
        decode,
    )


def _field_specs(cls: type[Any]) -> tuple[_FieldSpec, ...]:
    specs = _specs.get(cls)
    if specs is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        built = []
        for field in dataclasses.fields(cls):
            binary, text, decode = _codecs_for(hints[field.name])
            required = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            built.append(_FieldSpec(field.name, binary, text, decode, required))
        specs = _specs[cls] = tuple(built)
    return specs


_encoders: dict[tuple[type[Any], bool, bool], Callable[[Any], dict[str, Any]]] = {}


def _encoder(cls: type[Any], binary: bool, tagged: bool) -> Callable[[Any], dict[str, Any]]:
    """A function made for `cls` that builds its plain dict in one expression.

    Generated once per class and rendering: a generic loop over fields costs
    several times more, and messages are encoded on the payment hot path.
    """
    key = (cls, binary, tagged)
    encoder = _encoders.get(key)
    if encoder is None:
        namespace: dict[str, Any] = {}
        parts = [f"{TYPE_KEY!r}: {_names[cls]!r}"] if tagged else []
        for index, spec in enumerate(_field_specs(cls)):
            convert = spec.binary if binary else spec.text
            if convert is _identity:
                parts.append(f"{spec.name!r}: o.{spec.name}")
            else:
                namespace[f"c{index}"] = convert
                parts.append(f"{spec.name!r}: c{index}(o.{spec.name})")
        source = "def encode(o):\n    return {" + ", ".join(parts) + "}\n"
        exec(source, namespace)
        encoder = _encoders[key] = namespace["encode"]
    return encoder


_decoders: dict[type[Any], Callable[[Any, str], Any]] = {}


def _decode_fields(cls: type[T], data: Any, path: str) -> T:
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = _build_decoder(cls)
    result: T = decoder(data, path)
    return result


def _build_decoder(cls: type[Any]) -> Callable[[Any, str], Any]:
    """A function made for `cls` that checks and converts every field in one pass.

    The common case (a dict with exactly the declared fields, all valid) runs
    straight through; anything else falls back to `_decode_slowly`, which finds
    and names the problem.
    """
    specs = _field_specs(cls)
    if not all(spec.required for spec in specs):
        return lambda data, path: _decode_slowly(cls, data, path)
    namespace: dict[str, Any] = {"_cls": cls, "_slow": _decode_slowly, "_dict": dict}
    lines = ["def decode(data, path):"]
    lines.append(
        f"    if type(data) is not _dict or len(data) - ({TYPE_KEY!r} in data) != {len(specs)}:"
    )
    lines.append("        return _slow(_cls, data, path)")
    lines.append("    try:")
    args = []
    for index, spec in enumerate(specs):
        namespace[f"d{index}"] = spec.decode
        lines.append(f"        v{index} = data[{spec.name!r}]")
        args.append(f"d{index}(v{index}, path + {'.' + spec.name!r})")
    lines.append("    except KeyError:")
    lines.append("        return _slow(_cls, data, path)")
    lines.append(f"    return _cls({', '.join(args)})")
    exec("\n".join(lines), namespace)
    decoder: Callable[[Any, str], Any] = namespace["decode"]
    return decoder


def _decode_slowly(cls: type[T], data: Any, path: str) -> T:
    if not isinstance(data, dict):
        raise _fail(path, f"expected an object, got {type(data).__name__}")
    specs = _field_specs(cls)
    known = {spec.name for spec in specs}
    unknown = [key for key in data if key not in known and key != TYPE_KEY]
    if unknown:
        raise _fail(path, f"unknown field {_shown(unknown[0])}")
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name in data:
            values[spec.name] = spec.decode(data[spec.name], f"{path}.{spec.name}")
        elif spec.required:
            raise _fail(path, f"missing field {spec.name!r}")
    try:
        return cls(**values)
    except (ValueError, TypeError, CryptoError) as exc:
        raise _fail(path, str(exc)) from None


def to_plain(obj: object, *, binary: bool = True) -> dict[str, Any]:
    """The plain dict of a registered dataclass, tagged with its type name."""
    cls = type(obj)
    if cls not in _names:
        type_name(obj)  # raises the TypeError that names the class
    return _encoder(cls, binary, True)(obj)


def from_plain(data: Any) -> Any:
    """Build the registered dataclass a plain dict describes; `MalformedMessage` if it cannot."""
    if not isinstance(data, dict):
        raise _fail("message", f"expected an object, got {type(data).__name__}")
    name = data.get(TYPE_KEY)
    if not isinstance(name, str):
        raise _fail("message", "missing type tag")
    cls = _registry.get(name)
    if cls is None:
        raise _fail("message", f"unknown message type {_shown(name)}")
    return _decode_fields(cls, data, name)
