"""What a channel machine is configured with: who we are, where, and protocol timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from m2mpay.crypto import Address, Eip712Domain, Signature

__all__ = ["ChannelContext", "ProtocolConfig", "Signer"]


class Signer(Protocol):
    """Whatever holds our key: a `PrivateKey`, or a device's signer."""

    @property
    def address(self) -> Address: ...

    def sign_digest(self, digest: bytes) -> Signature: ...


@dataclass(frozen=True, slots=True)
class ProtocolConfig:
    min_challenge_period: int = 10  # seconds; shorter ones leave a watcher no time
    max_challenge_period: int = 31_536_000  # the contract's limit
    close_timeout_ms: int = 30_000  # cooperative close falls back to unilateral after this
    settle_grace_s: int = 5  # party b waits this long after the deadline before settling,
    # so the two parties rarely both pay gas for the same settlement


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """Static configuration of the machine: not state, never logged, never snapshotted.

    Signing with it is still deterministic (RFC 6979), so replaying the log gives
    the same signatures.
    """

    signer: Signer
    domain: Eip712Domain
    config: ProtocolConfig = field(default_factory=ProtocolConfig)

    @property
    def me(self) -> Address:
        return self.signer.address
