"""A structural check of a peer's CBOR before cbor2 builds anything from it.

cbor2's decoder gives meaning to dozens of tags, and some of that meaning is
dangerous in a peer's hands: tag 30 builds a `Fraction` (a gcd of two 400 KB
bignums costs seconds of CPU), tags 28/29 build shared and therefore cyclic
containers (endless depth for whoever walks them), tag 35 compiles a regular
expression, tag 36 runs the e-mail parser. The C decoder offers no switch to turn
them off, so `check_cbor` walks the item heads first, without recursion and
without building values, and lets through only what m2mpay's own encoder writes:
definite-length items, nested at most `max_depth` deep, and the bignum tags (2, 3)
on byte strings of at most `MAX_BIGNUM_BYTES`.
"""

from __future__ import annotations

from typing import Final

from m2mpay.errors import MalformedMessage

__all__ = ["MAX_BIGNUM_BYTES", "check_cbor"]

MAX_BIGNUM_BYTES: Final = 64
"""Longest bignum (tags 2 and 3) accepted; a uint256 takes 32 bytes."""

_BIGNUM_TAGS: Final = (2, 3)
_BYTES: Final = 2
_TEXT: Final = 3
_ARRAY: Final = 4
_MAP: Final = 5
_TAG: Final = 6


def _fail(problem: str) -> MalformedMessage:
    return MalformedMessage(f"cbor: {problem}")


def check_cbor(data: bytes, max_depth: int) -> None:
    """`MalformedMessage` unless `data` is exactly one CBOR item of the allowed kinds."""
    end = len(data)
    pos = 0
    # How many items each open container still holds; the bottom entry is the
    # one top-level item.
    pending = [1]
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        pending[-1] -= 1
        if pos >= end:
            raise _fail("frame ends inside an item")
        head = data[pos]
        pos += 1
        major, info = head >> 5, head & 0x1F
        if info < 24:
            argument = info
        elif info < 28:
            size = 1 << (info - 24)
            if pos + size > end:
                raise _fail("frame ends inside an item head")
            argument = int.from_bytes(data[pos : pos + size], "big")
            pos += size
        else:
            raise _fail(f"indefinite length or reserved item head 0x{head:02x}")
        if major in (_BYTES, _TEXT):
            if argument > end - pos:
                raise _fail("string runs past the end of the frame")
            pos += argument
        elif major in (_ARRAY, _MAP):
            items = argument * 2 if major == _MAP else argument
            # Every item takes at least one byte: a larger count is a lie.
            if items > end - pos:
                raise _fail("container runs past the end of the frame")
            if len(pending) > max_depth:
                raise _fail(f"nested deeper than {max_depth} levels")
            pending.append(items)
        elif major == _TAG:
            if argument not in _BIGNUM_TAGS:
                raise _fail(f"tag {argument} is not accepted")
            if pos >= end or data[pos] >> 5 != _BYTES:
                raise _fail("a bignum tag must hold a byte string")
            length = data[pos] & 0x1F
            if length > 24 or (
                length == 24 and (pos + 1 >= end or data[pos + 1] > MAX_BIGNUM_BYTES)
            ):
                raise _fail(f"bignum longer than {MAX_BIGNUM_BYTES} bytes")
            pending.append(1)
    if pos != end:
        raise _fail(f"{end - pos} bytes after the end of the message")
