"""The scalars of the plain-data form: the bounded field types (`Uint256`, `Uint64`,
`Bytes32`, `Text`) and the checks that turn a peer's plain value into each of them,
or into a `MalformedMessage` that names the field."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from m2mpay.crypto import Address, Signature
from m2mpay.errors import CryptoError, MalformedMessage

Decoder = Callable[[Any, str], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _UInt:
    bits: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Length:
    size: int


@dataclasses.dataclass(frozen=True, slots=True)
class _MaxLength:
    size: int


Uint256 = Annotated[int, _UInt(256)]
Uint64 = Annotated[int, _UInt(64)]
# An integer a JavaScript number holds exactly (below 2**53): what a browser reads from
# JSON without losing digits, where a larger value would be an amount (`Uint256`, text).
Uint53 = Annotated[int, _UInt(53)]
Bytes32 = Annotated[bytes, _Length(32)]
Text = Annotated[str, _MaxLength(1000)]
# An opaque byte string a peer hands over for someone else to read (sealed terms).
Blob = Annotated[bytes, _MaxLength(1024)]


def _fail(path: str, problem: str) -> MalformedMessage:
    return MalformedMessage(f"{path}: {problem}")


def _shown(value: Any) -> str:
    """A short rendering of a peer's value for an error message.

    `repr` itself fails on an integer of more than 4300 digits (a CBOR bignum) and
    could be megabytes long, so neither may reach a message unguarded.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, str | bytes | bytearray | int | float | bool) or value is None:
        return repr(value[:40] if isinstance(value, str | bytes | bytearray) else value)
    return f"<{type(value).__name__}>"


def _identity(value: Any) -> Any:
    return value


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _as_bytes(value: Any, path: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            raise _fail(path, "not hexadecimal") from None
    raise _fail(path, f"expected bytes, got {type(value).__name__}")


def _uint_decoder(bits: int) -> Decoder:
    limit = 1 << bits

    def decode(value: Any, path: str) -> int:
        if type(value) is int and 0 <= value < limit:
            return value
        number: int
        if isinstance(value, str):
            if not value.isdigit() or not value.isascii():
                raise _fail(path, "expected a non-negative decimal integer")
            if len(value) > 80:
                raise _fail(path, "integer too long")
            number = int(value)
        elif isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"expected an integer, got {type(value).__name__}")
        else:
            number = value
        if number < 0:
            raise _fail(path, "must not be negative")
        if number >= limit:
            raise _fail(path, f"does not fit in {bits} bits")
        return number

    return decode


def _int_decoder(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"expected an integer, got {type(value).__name__}")
    return value


def _bool_decoder(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"expected a boolean, got {type(value).__name__}")
    return value


def _str_decoder(max_length: int | None) -> Decoder:
    def decode(value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise _fail(path, f"expected text, got {type(value).__name__}")
        if max_length is not None and len(value) > max_length:
            raise _fail(path, f"longer than {max_length} characters")
        return value

    return decode


def _bytes_decoder(size: int | None, max_size: int | None = None) -> Decoder:
    def decode(value: Any, path: str) -> bytes:
        raw = _as_bytes(value, path)
        if size is not None and len(raw) != size:
            raise _fail(path, f"expected {size} bytes, got {len(raw)}")
        if max_size is not None and len(raw) > max_size:
            raise _fail(path, f"longer than {max_size} bytes")
        return raw

    return decode


def _address_decoder(value: Any, path: str) -> Address:
    try:
        return Address(value if isinstance(value, str) else _as_bytes(value, path))
    except CryptoError as exc:
        raise _fail(path, str(exc)) from None


def _signature_decoder(value: Any, path: str) -> Signature:
    try:
        return Signature(_as_bytes(value, path))
    except CryptoError as exc:
        raise _fail(path, str(exc)) from None
