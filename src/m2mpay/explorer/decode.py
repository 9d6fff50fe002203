"""Calls and logs decoded against the contracts a deployment holds. Pure: no I/O, no clock.

A call to a known contract reads as its function's name and named arguments, a log of a
known contract as its event's name and named arguments; a log of an unknown emitter is
tried against every known event (an ERC-20's `Transfer` reads the same from any token).
What does not decode (an unknown selector, a cut or hostile payload) is shown raw with
`function`/`event` None: the chain holds whatever anyone sent, and an explorer shows it
rather than fail on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.exceptions import DecodingError

from m2mpay.chain import Deployment, LogEntry, load_artifact
from m2mpay.chain.abi import ContractInterface
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError

__all__ = [
    "ARTIFACTS",
    "CallView",
    "EventView",
    "KnownContracts",
    "Value",
    "decode_call",
    "decode_log",
    "display",
]

# Every contract a deployment may hold, by its artifact's name.
ARTIFACTS: Final = (
    "ChannelHub",
    "Token",
    "TokenFactory",
    "Exchange",
    "ServiceRegistry",
    "MeteredEscrow",
    "TelemetryAnchor",
)
# What eth-abi and our types raise on bytes that do not hold what they claim.
_UNDECODABLE: Final = (
    DecodingError,
    UnicodeDecodeError,
    ValueError,
    OverflowError,
    TypeError,
    IndexError,
    M2MPayError,
)
_ADDRESS: Final = re.compile(r"^0x[0-9a-f]{40}$")
# The deepest nesting `display` follows: no ABI of ours nests deeper than three.
_MAX_DEPTH: Final = 8

# An argument as shown: integers as decimal strings (uint256 does not fit a JSON
# number), bytes as 0x-hex, addresses checksummed, structs as objects.
Value = str | bool | list["Value"] | dict[str, "Value"]


@dataclass(frozen=True, slots=True)
class KnownContracts:
    """Which contract lives at which address: the deployment's, and the tokens its
    factory made (each a `Token`)."""

    by_address: Mapping[Address, str]

    @classmethod
    def of(cls, deployment: Deployment, tokens: Iterable[Address] = ()) -> KnownContracts:
        known: dict[Address, str] = {address: "Token" for address in tokens}
        known[deployment.token] = "Token"
        known[deployment.hub] = "ChannelHub"
        if deployment.anchor is not None:
            known[deployment.anchor] = "TelemetryAnchor"
        if deployment.market is not None:
            known.update({address: name for name, address in deployment.market.named()})
        return cls(known)

    def name_of(self, address: Address | None) -> str | None:
        return None if address is None else self.by_address.get(address)


@dataclass(frozen=True, slots=True)
class CallView:
    """A transaction's input: the contract it went to and, if it decodes, the function."""

    contract: str | None  # the artifact's name, None for an address we do not know
    function: str | None  # None: shown raw (unknown selector, or arguments that do not decode)
    args: dict[str, Value]
    selector: str  # the input's first 4 bytes, 0x-hex ("0x" when shorter)


@dataclass(frozen=True, slots=True)
class EventView:
    """A log: where it came from and, if it decodes, the event; always its raw parts."""

    address: Address
    contract: str | None
    event: str | None
    args: dict[str, Value]
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: bytes
    log_index: int


def display(value: Any, depth: int = 0) -> Value:
    """A decoded ABI value as shown on the API (see `Value`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        # eth-abi gives addresses in lower case; a text of exactly that form reads the same.
        return Address(value).checksum if _ADDRESS.match(value) else value
    if depth >= _MAX_DEPTH:
        return repr(value)[:200]
    if isinstance(value, Mapping):
        return {str(k): display(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [display(v, depth + 1) for v in value]
    return str(value)


def _interface(name: str) -> ContractInterface:
    return load_artifact(name).interface


def decode_call(to: Address | None, data: bytes, known: KnownContracts) -> CallView:
    """What a transaction to `to` with input `data` asked (a deployment when `to` is None)."""
    contract = known.name_of(to)
    selector = "0x" + data[:4].hex() if len(data) >= 4 else "0x"
    if contract is None or to is None:
        return CallView(contract, None, {}, selector)
    try:
        decoded = _interface(contract).decode_call(data)
        if decoded is None:
            return CallView(contract, None, {}, selector)
        args = {name: display(value) for name, value in decoded.args.items()}
    except _UNDECODABLE:
        return CallView(contract, None, {}, selector)
    return CallView(contract, decoded.name, args, selector)


def decode_log(log: LogEntry, known: KnownContracts) -> EventView:
    """A log as an event of its emitter's contract, or of any known contract when the
    emitter is unknown; raw when none declares it."""
    contract = known.name_of(log.address)
    candidates = (contract,) if contract is not None else ARTIFACTS
    for name in candidates:
        try:
            decoded = _interface(name).decode_event(log)
            if decoded is None:
                continue
            args = {key: display(value) for key, value in decoded.args.items()}
        except _UNDECODABLE:
            continue
        return _view(log, contract, decoded.name, args)
    return _view(log, contract, None, {})


def _view(
    log: LogEntry, contract: str | None, event: str | None, args: dict[str, Value]
) -> EventView:
    return EventView(
        address=log.address,
        contract=contract,
        event=event,
        args=args,
        topics=log.topics,
        data=log.data,
        block_number=log.block_number,
        tx_hash=log.tx_hash,
        log_index=log.log_index,
    )
