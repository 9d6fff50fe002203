"""Hostile inputs and checks shared by the fuzz tests of every decoder.

A decoder that reads another party's bytes must, for any input, return a value or
raise the project's typed error for its package; it must not hang, and its memory
must stay bounded by its size limit. The fixed inputs below are the classic ways to
break a parser: nesting bombs (py-evm raises the recursion limit to 100,000, so a
C-recursive parser would overflow the C stack rather than raise), oversized and
truncated inputs, integers past 2**256, NaN and infinities, duplicate keys and
invalid UTF-8. Duplicate keys are not refused: every parser here keeps the last
one, the tests pin that, and whatever a message means is signed over its decoded
values, never over its bytes.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from hypothesis import HealthCheck, settings

__all__ = [
    "BOMB_DEPTH",
    "FUZZ",
    "TEN_MB",
    "cbor_nesting_bombs",
    "hostile_json",
    "json_nesting_bombs",
    "peak_memory",
    "truncations",
]

BOMB_DEPTH: Final = 100_000
TEN_MB: Final = 10 * 1024 * 1024

FUZZ = settings(
    max_examples=200,
    # A decoder that takes a second over one small input is a hang in the making;
    # the margin is for a machine shared with other test runs.
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def json_nesting_bombs(depth: int = BOMB_DEPTH) -> list[bytes]:
    """Lists and objects nested `depth` deep, closed and unclosed."""
    lists = b"[" * depth + b"]" * depth
    objects = b'{"a":' * depth + b"1" + b"}" * depth
    return [lists, objects, b"[" * depth, b'{"a":' * depth]


def cbor_nesting_bombs(depth: int = BOMB_DEPTH) -> list[bytes]:
    """Arrays and maps nested `depth` deep (array of one item, map of one pair)."""
    arrays = b"\x81" * depth + b"\x00"
    maps = b"\xa1\x61a" * depth + b"\x00"
    tags = b"\xc2" * depth + b"\x40"  # bignum tags around bignum tags
    return [arrays, maps, tags, b"\x81" * depth]


def hostile_json(envelope: bytes) -> list[bytes]:
    """Variants of a JSON object `envelope` (which ends in `}`) that break its fields."""
    body = envelope[:-1]
    return [
        body + b',"x":' + b"1" * 100 + b"}",  # an integer far past 2**256
        body + b',"x":NaN}',
        body + b',"x":Infinity}',
        body + b',"x":-Infinity}',
        body + b',"x":1e400}',
        body + b',"x":"\xff\xfe"}',  # invalid UTF-8 in a string
        body + b',"\xc3\x28":1}',  # invalid UTF-8 in a key
        body + b',"x":"\\ud800"}',  # a lone surrogate
        envelope + envelope,  # two values
        b"\xef\xbb\xbf" + envelope,  # a byte order mark
        b"",
        b"null",
        b"[]",
        b'"text"',
    ]


def truncations(frame: bytes, limit: int = 200) -> list[bytes]:
    """Every proper prefix of `frame` (at most `limit` of them, spread out)."""
    step = max(1, len(frame) // limit)
    return [frame[:end] for end in range(0, len(frame), step)]


def peak_memory(action: Callable[[], Any]) -> int:
    """Peak bytes Python allocated while `action` ran (its result or error is dropped)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with contextlib.suppress(Exception):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
