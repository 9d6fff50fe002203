"""ChannelHub events decoded into plain records. Pure: no I/O, no clock.

A watcher or a node turns chain logs into these records and feeds them to the
channel state machine as inputs; each carries everything needed to rebuild the
channel's on-chain pre-image without another read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.ledger import LogEntry
from m2mpay.crypto import Address

__all__ = [
    "ChannelChallenged",
    "ChannelClosing",
    "ChannelDeposited",
    "ChannelOpened",
    "ChannelSettled",
    "HubEvent",
    "PayoutDeferred",
    "Withdrawn",
    "decode_hub_event",
]


@dataclass(frozen=True, slots=True)
class HubEvent:
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class ChannelOpened(HubEvent):
    channel_id: bytes
    a: Address
    b: Address
    token: Address
    challenge_period: int
    nonce: int
    deposit_a: int


@dataclass(frozen=True, slots=True)
class ChannelDeposited(HubEvent):
    channel_id: bytes
    participant: Address
    amount: int
    deposit_a: int
    deposit_b: int


@dataclass(frozen=True, slots=True)
class ChannelClosing(HubEvent):
    channel_id: bytes
    closer: Address
    transferred_a: int
    transferred_b: int
    deadline: int


@dataclass(frozen=True, slots=True)
class ChannelChallenged(HubEvent):
    channel_id: bytes
    challenger: Address
    transferred_a: int
    transferred_b: int
    deadline: int


@dataclass(frozen=True, slots=True)
class ChannelSettled(HubEvent):
    channel_id: bytes
    balance_a: int
    balance_b: int
    cooperative: bool


@dataclass(frozen=True, slots=True)
class PayoutDeferred(HubEvent):
    recipient: Address
    token: Address
    amount: int


@dataclass(frozen=True, slots=True)
class Withdrawn(HubEvent):
    recipient: Address
    token: Address
    receiver: Address
    amount: int


_EVENT_TYPES: dict[str, type[HubEvent]] = {
    cls.__name__: cls
    for cls in (
        ChannelOpened,
        ChannelDeposited,
        ChannelClosing,
        ChannelChallenged,
        ChannelSettled,
        PayoutDeferred,
        Withdrawn,
    )
}


def _field_value(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return Address(value)
    return value


def decode_hub_event(log: LogEntry) -> HubEvent | None:
    """The record for a ChannelHub log; None for a log of any other kind."""
    decoded = load_artifact("ChannelHub").interface.decode_event(log)
    if decoded is None:
        return None
    event_type = _EVENT_TYPES.get(decoded.name)
    if event_type is None:
        return None
    fields = {name: _field_value(value) for name, value in decoded.args.items()}
    return event_type(
        block_number=log.block_number, tx_hash=log.tx_hash, log_index=log.log_index, **fields
    )
