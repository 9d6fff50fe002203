"""The messages a device and its host exchange (see `m2mpay.node.host`).

They travel in the same authenticated peer links as channel messages, each side
with its own codec: a device may speak CBOR to a host that speaks JSON.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Final

from m2mpay.channel.outputs import TxRequest
from m2mpay.crypto import Address
from m2mpay.node.chain_access import ChainInput
from m2mpay.node.watch import ProofUpdate, SignedRegistration, WatchError
from m2mpay.plain import Bytes32, Text, Uint64, plain_type
from m2mpay.wire import PeerLink

__all__ = [
    "HOST_MESSAGE_TYPES",
    "HostEvents",
    "HostExecute",
    "HostHello",
    "HostMessage",
    "HostRefused",
    "HostResult",
    "HostStatus",
    "HostWatchProof",
    "HostWatchRegister",
    "HostWatchResult",
    "send_on",
]


@plain_type("host.hello")
@dataclass(frozen=True, slots=True)
class HostHello:
    """Device → host: stream me the events of my channels from `start_block` on."""

    start_block: Uint64


@plain_type("host.status")
@dataclass(frozen=True, slots=True)
class HostStatus:
    """Host → device, at once and then every second: which chain, and its clock.

    `watcher` is the watcher the host relays to (None: it relays to none).
    """

    chain_id: Uint64
    hub: Address
    head: Uint64
    chain_time: Uint64
    watcher: Address | None = None
    genesis: Bytes32 | None = None  # the chain's genesis hash, which the device's peers check


@plain_type("host.events")
@dataclass(frozen=True, slots=True)
class HostEvents:
    """Host → device: hub events of the device's channels, up to block `head`."""

    inputs: tuple[ChainInput, ...]
    head: Uint64


@plain_type("host.execute")
@dataclass(frozen=True, slots=True)
class HostExecute:
    """Device → host: carry out this transaction for me."""

    request_id: Uint64
    tx: TxRequest


@plain_type("host.result")
@dataclass(frozen=True, slots=True)
class HostResult:
    request_id: Uint64
    ok: bool
    reason: Text


@plain_type("host.refused")
@dataclass(frozen=True, slots=True)
class HostRefused:
    """Host → device: a message the host will not act on, and why."""

    reason: Text
    channel_id: Bytes32 | None = None


@plain_type("host.watch_register")
@dataclass(frozen=True, slots=True)
class HostWatchRegister:
    """Device → host: pass my signed registration on to your watcher."""

    request_id: Uint64
    registration: SignedRegistration


@plain_type("host.watch_proof")
@dataclass(frozen=True, slots=True)
class HostWatchProof:
    """Device → host: pass this newer proof on to your watcher."""

    request_id: Uint64
    proof: ProofUpdate


@plain_type("host.watch_result")
@dataclass(frozen=True, slots=True)
class HostWatchResult:
    """Host → device: the watcher's answer (the token, for a registration), or why not."""

    request_id: Uint64
    token: Text = ""
    error: WatchError | None = None


HostMessage = (
    HostHello
    | HostStatus
    | HostEvents
    | HostExecute
    | HostResult
    | HostRefused
    | HostWatchRegister
    | HostWatchProof
    | HostWatchResult
)
HOST_MESSAGE_TYPES: Final[tuple[type, ...]] = typing.get_args(HostMessage)


async def send_on(session: PeerLink, message: HostMessage) -> None:
    # Sessions carry any registered message type; their signature names the channel
    # protocol's union, which host messages are not part of.
    await session.send(message)  # type: ignore[arg-type]
