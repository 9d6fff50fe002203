"""Every type a peer may send in a session, and hypothesis strategies that build them."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Final, Union, get_args, get_origin

from hypothesis import strategies as st

from m2mpay.channel.messages import MESSAGE_TYPES
from m2mpay.crypto import Address, PrivateKey, Signature
from m2mpay.node.host_protocol import HOST_MESSAGE_TYPES
from m2mpay.plain import Bytes32, Text, Uint64, Uint256
from m2mpay.provenance.session_streams import StreamAsk, StreamGiven
from m2mpay.stream.messages import SESSION_MESSAGE_TYPES

__all__ = ["WIRE_TYPES", "instances_of", "wire_messages"]

WIRE_TYPES: Final[tuple[type[Any], ...]] = (
    *MESSAGE_TYPES,
    *SESSION_MESSAGE_TYPES,
    *HOST_MESSAGE_TYPES,
    StreamAsk,  # a session's provenance stream, asked and given (m2mpay.daemon)
    StreamGiven,
)

_signer = PrivateKey(bytes(31) + b"\x07")
_KNOWN: Final[list[tuple[Any, st.SearchStrategy[Any]]]] = [
    (Uint256, st.integers(0, 2**256 - 1)),
    (Uint64, st.integers(0, 2**64 - 1)),
    (Bytes32, st.binary(min_size=32, max_size=32)),
    (Text, st.text(max_size=60)),
    (Address, st.binary(min_size=20, max_size=20).map(Address)),
    (Signature, st.binary(min_size=32, max_size=32).map(_signer.sign_digest)),
]
_PLAIN: Final[dict[Any, st.SearchStrategy[Any]]] = {
    bool: st.booleans(),
    int: st.integers(-(2**70), 2**70),
    str: st.text(max_size=30),
    bytes: st.binary(max_size=30),
}


def _strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    for declared, strategy in _KNOWN:
        if hint == declared:
            return strategy
    origin = get_origin(hint)
    if origin is typing.Annotated:
        return _strategy_for(get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return st.one_of([_strategy_for(arg) for arg in get_args(hint)])
    if hint is type(None):
        return st.none()
    if origin is tuple:
        return st.lists(_strategy_for(get_args(hint)[0]), max_size=3).map(tuple)
    if dataclasses.is_dataclass(hint):
        return instances_of(typing.cast("type[Any]", hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if hint in _PLAIN:
        return _PLAIN[hint]
    raise AssertionError(f"no strategy for field type {hint!r}; extend the test")


def instances_of(cls: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return st.deferred(
        lambda: st.builds(cls, **{name: _strategy_for(hint) for name, hint in hints.items()})
    )


wire_messages: Final = st.one_of([instances_of(cls) for cls in WIRE_TYPES])
