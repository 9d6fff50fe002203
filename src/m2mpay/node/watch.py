"""A watcher as the node layer sees it: where a party's signed registration and its
peer's newest balance proofs go, so that its channels are defended while it is offline.

The watchtower service is a layer up (`m2mpay.watcher`), and the node layer must not
import it. This module is the small interface between the two: `Watchtower`, the
values that cross it, and its two errors. The watcher client implements it for a
watcher in the same process and for one reached over HTTP
(`m2mpay.watcher_client.towers`), and feeds it from a node
(`m2mpay.watcher_client.feed`). The node layer implements it once, for a device:
`HostAccess.watchtower` relays to the watcher
of the device's host over the host session it already has, so a device needs no
client of the watcher's HTTP API (`m2mpay.node.host`).

A relay never signs for the party: the registration is signed with the party's key
where the party is, and the watcher checks it. Refusals keep the watcher's stable
`code` and name one of a few kinds, the only part a feed acts on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from m2mpay.crypto import (
    Address,
    Signature,
    channel_domain,
    channel_id,
    watch_registration_digest,
)
from m2mpay.errors import ProtocolError, TransportError
from m2mpay.plain import Bytes32, Text, Uint64, Uint256, plain_type

__all__ = [
    "ProofUpdate",
    "SignedRegistration",
    "TowerIdentity",
    "WatchError",
    "WatchErrorKind",
    "WatchRefused",
    "WatchUnavailable",
    "Watchtower",
]


@plain_type("watch.registration")
@dataclass(frozen=True, slots=True)
class SignedRegistration:
    """A party's EIP-712 `WatchRegistration`: watch this channel for me.

    The channel travels as its id's pre-image, so the watcher can rebuild what the
    hub needs from chain events; the signature binds channel, party, watcher, hub,
    chain and `issued_at` (seconds; a newer one replaces the party's token).
    """

    a: Address
    b: Address
    asset: Address
    challenge_period: Uint64
    nonce: Uint256
    party: Address
    issued_at: Uint64
    signature: Signature

    @property
    def channel_id(self) -> bytes:
        return channel_id(self.a, self.b, self.asset, self.challenge_period, self.nonce)


@plain_type("watch.proof")
@dataclass(frozen=True, slots=True)
class ProofUpdate:
    """The newest total `party`'s peer signed, with the party's registration token."""

    channel_id: Bytes32
    party: Address
    token: Text
    transferred: Uint256
    signature: Signature


@dataclass(frozen=True, slots=True)
class TowerIdentity:
    """What a registration is bound to: the watcher's address, its chain and hub."""

    address: Address
    chain_id: int
    hub: Address

    def registration_digest(self, channel: bytes, party: Address, issued_at: int) -> bytes:
        """What `party` signs to register `channel` with this watcher, as of `issued_at`."""
        return watch_registration_digest(
            channel_domain(self.chain_id, self.hub), channel, party, self.address, issued_at
        )


class WatchErrorKind(enum.Enum):
    """What a feed does about an error; the watcher's `code` says more, for people."""

    STALE = "stale"  # not newer than what the watcher holds: nothing to do
    UNAUTHORIZED = "unauthorized"  # the token is not (or no longer) the registration's
    UNKNOWN = "unknown"  # no such registration: register again
    INVALID = "invalid"  # malformed or wrongly signed: trying again will not help
    UNAVAILABLE = "unavailable"  # cannot be reached now: try again later


class WatchRefused(ProtocolError):
    """The watcher refused a registration or a proof; nothing was changed."""

    def __init__(
        self, kind: WatchErrorKind, code: str, message: str, field: str | None = None
    ) -> None:
        if kind is WatchErrorKind.UNAVAILABLE:
            raise ValueError("an unavailable watcher is a WatchUnavailable, not a refusal")
        super().__init__(f"{code}: {message}" + (f" (field {field})" if field else ""))
        self.kind = kind
        self.code = code
        self.message = message
        self.field = field


class WatchUnavailable(TransportError):
    """The watcher (or the host relaying to it) cannot be reached now."""


@plain_type("watch.error")
@dataclass(frozen=True, slots=True)
class WatchError:
    """A `WatchRefused` or `WatchUnavailable` in plain form, to travel through a relay."""

    kind: WatchErrorKind
    code: Text
    message: Text
    field: Text | None = None

    @classmethod
    def of(cls, exc: WatchRefused | WatchUnavailable) -> WatchError:
        if isinstance(exc, WatchUnavailable):
            return cls(WatchErrorKind.UNAVAILABLE, "unavailable", str(exc)[:1000])
        return cls(exc.kind, exc.code[:1000], exc.message[:1000], exc.field)

    def exception(self) -> WatchRefused | WatchUnavailable:
        if self.kind is WatchErrorKind.UNAVAILABLE:
            return WatchUnavailable(self.message)
        return WatchRefused(self.kind, self.code, self.message, self.field)


class Watchtower(Protocol):
    """A watcher that defends a party's channels with the proofs it is handed.

    Every method raises `WatchRefused` when the watcher says no and
    `WatchUnavailable` when it cannot be asked now.
    """

    async def identity(self) -> TowerIdentity:
        """Who the watcher is; a registration must be signed for exactly this."""
        ...

    async def register(self, registration: SignedRegistration) -> str:
        """Have the channel watched for `registration.party`; returns its bearer token."""
        ...

    async def update(self, proof: ProofUpdate) -> None:
        """Hand over a newer proof; returns once the watcher holds it durably."""
        ...
