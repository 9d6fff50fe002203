"""How a machine's log and snapshots are written: JSON of the protocol's plain data.

JSON through orjson costs well under a microsecond a record where cbor2 costs
about ten, and the log is written for every payment.

A log record is one input and the outputs it produced; replay needs only the
input (the machine is deterministic), the outputs are kept for audit and for
finding what was in flight when a process died.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

import orjson

from m2mpay.errors import MalformedMessage, StoreError
from m2mpay.plain import from_plain, to_plain

__all__ = ["PlainLog", "PureMachine"]

_SNAPSHOT_VERSION: Final = 1

K = TypeVar("K")
S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 (the input type)
O = TypeVar("O")  # noqa: E741 (the output type)


class PlainLog(Generic[K, S, I, O]):
    """The log and snapshot half of an engine `Machine` whose data are plain types."""

    def __init__(self, state_type: type[S], state_key: Callable[[S], K]) -> None:
        self._state_type = state_type
        self._state_key = state_key

    def encode_record(self, inp: I, outputs: tuple[O, ...]) -> bytes:
        return orjson.dumps(
            {"i": to_plain(inp, binary=False), "o": [to_plain(o, binary=False) for o in outputs]}
        )

    def decode_record(self, data: bytes) -> I:
        """The input of a log record (its outputs are not needed to replay)."""
        try:
            inp: I = from_plain(orjson.loads(data)["i"])
        except (MalformedMessage, KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"unreadable log record: {exc}") from exc
        return inp

    def encode_snapshot(self, states: Mapping[K, S]) -> bytes:
        return orjson.dumps(
            {"v": _SNAPSHOT_VERSION, "states": [to_plain(s, binary=False) for s in states.values()]}
        )

    def decode_snapshot(self, data: bytes) -> dict[K, S]:
        try:
            raw: Any = orjson.loads(data)
            if raw.get("v") != _SNAPSHOT_VERSION:
                raise StoreError(f"snapshot version {raw.get('v')!r} is not supported")
            states: dict[K, S] = {}
            for plain in raw["states"]:
                state = from_plain(plain)
                if not isinstance(state, self._state_type):
                    raise StoreError(f"snapshot holds something that is not a {self._state_type}")
                states[self._state_key(state)] = state
            return states
        except (MalformedMessage, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"unreadable snapshot: {exc}") from exc


C = TypeVar("C")


class PureMachine(PlainLog[K, S, I, O], Generic[C, K, S, I, O]):
    """A pure machine for the engine: `transition(context, state, input)` and its
    `is_refusal` test, run with the context its host gives while started (`not_started`,
    the error raised without one); its log and snapshots as plain data."""

    def __init__(
        self,
        state_type: type[S],
        state_key: Callable[[S], K],
        context: Callable[[], C | None],
        not_started: Callable[[], Exception],
        transition: Callable[[C, S | None, I], tuple[S | None, tuple[O, ...]]],
        is_refusal: Callable[[S | None, S | None, tuple[O, ...]], bool],
    ) -> None:
        super().__init__(state_type, state_key)
        self._context = context
        self._not_started = not_started
        self._transition = transition
        self._is_refusal = is_refusal

    @property
    def _ctx(self) -> C:
        ctx = self._context()
        if ctx is None:
            raise self._not_started()
        return ctx

    def transition(self, state: S | None, inp: I) -> tuple[S | None, tuple[O, ...]]:
        return self._transition(self._ctx, state, inp)

    def is_refusal(self, before: S | None, after: S | None, outputs: tuple[O, ...]) -> bool:
        return self._is_refusal(before, after, outputs)
