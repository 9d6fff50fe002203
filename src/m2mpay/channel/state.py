"""A channel's state and the explicit table of its lifecycle."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from m2mpay.channel.evolve import make_evolve
from m2mpay.channel.messages import ChannelTerms
from m2mpay.crypto import Address, Signature
from m2mpay.errors import ChannelError
from m2mpay.plain import Bytes32, Uint64, Uint256, plain_type

__all__ = [
    "ALLOWED_TRANSITIONS",
    "FINAL_PHASES",
    "REWIND_TRANSITIONS",
    "ChannelState",
    "CloseState",
    "OnchainClose",
    "Phase",
    "WireProof",
    "refuse_move",
]


class Phase(enum.Enum):
    PROPOSED = "proposed"  # proposal sent or received, no answer yet
    ACCEPTED = "accepted"  # both agreed; waiting for the open on chain
    OPEN = "open"  # on chain; payments flow both ways
    CLOSING = "closing"  # a cooperative close is under way; no new payments
    CLOSED = "closed"  # settled cooperatively on chain (final)
    DISPUTED = "disputed"  # closed unilaterally on chain; challenge period running
    SETTLED = "settled"  # paid out after the challenge period (final)
    REJECTED = "rejected"  # the proposal was refused (final)
    EXPIRED = "expired"  # not accepted or not funded in time


# Every phase change goes through `ChannelState.moved_to`, which refuses any pair
# not listed here. The chain is the final word: money seen on chain is tracked
# whatever the off-chain history (an open after expiry, a settlement while open).
ALLOWED_TRANSITIONS: Final[dict[Phase, frozenset[Phase]]] = {
    Phase.PROPOSED: frozenset({Phase.ACCEPTED, Phase.REJECTED, Phase.EXPIRED, Phase.OPEN}),
    Phase.ACCEPTED: frozenset({Phase.OPEN, Phase.EXPIRED}),
    Phase.OPEN: frozenset({Phase.CLOSING, Phase.DISPUTED, Phase.CLOSED}),
    Phase.CLOSING: frozenset({Phase.CLOSED, Phase.DISPUTED}),
    Phase.DISPUTED: frozenset({Phase.SETTLED}),
    Phase.EXPIRED: frozenset({Phase.OPEN}),
    Phase.REJECTED: frozenset({Phase.OPEN}),
    Phase.CLOSED: frozenset(),
    Phase.SETTLED: frozenset(),
}
FINAL_PHASES: Final = frozenset({Phase.CLOSED, Phase.SETTLED, Phase.REJECTED})

# The only moves back: a chain reorganisation dropped the open, the close or the
# settlement a phase stood on (`ChannelState.rewound_to`). Nothing off-chain ever
# moves a channel back.
REWIND_TRANSITIONS: Final[dict[Phase, frozenset[Phase]]] = {
    Phase.OPEN: frozenset({Phase.ACCEPTED}),
    Phase.CLOSING: frozenset({Phase.ACCEPTED}),
    Phase.DISPUTED: frozenset({Phase.ACCEPTED, Phase.OPEN, Phase.CLOSING, Phase.CLOSED}),
    Phase.CLOSED: frozenset(
        {Phase.ACCEPTED, Phase.OPEN, Phase.CLOSING, Phase.DISPUTED, Phase.SETTLED}
    ),
    Phase.SETTLED: frozenset(
        {Phase.ACCEPTED, Phase.OPEN, Phase.CLOSING, Phase.DISPUTED, Phase.CLOSED}
    ),
}


@plain_type("channel.close_state")
@dataclass(frozen=True, slots=True)
class CloseState:
    """A cooperative close under way."""

    initiator: bool  # we asked for it
    started_at_ms: Uint64
    balance_a: Uint256 = 0  # the split we signed (responder), or 0 before we sign
    balance_b: Uint256 = 0
    signature: Signature | None = None  # ours over that split, once given


@plain_type("channel.onchain_close")
@dataclass(frozen=True, slots=True)
class OnchainClose:
    """A unilateral close as the chain records it."""

    closer: Address
    deadline: Uint64  # chain timestamp after which anyone may settle
    transferred_a: Uint256
    transferred_b: Uint256


def refuse_move(
    what: str, now: enum.Enum, to: enum.Enum, table: Mapping[Any, frozenset[Any]]
) -> None:
    """`ChannelError("invalid_transition")` for a move of `what` (a channel, a session)
    that its lifecycle table does not allow."""
    if to not in table[now]:
        raise ChannelError(
            "invalid_transition", f"a {what} cannot go from {now.value} to {to.value}"
        )


@plain_type("channel.wire_proof")
@dataclass(frozen=True, slots=True)
class WireProof:
    """Our newest proof that the wire may carry while commitments signed above it are
    the application's to deliver (see `ChannelState.wire_proof`)."""

    total: Uint256
    seq: Uint64
    signature: Signature | None


@plain_type("channel.state")
@dataclass(frozen=True, slots=True)
class ChannelState:
    """Everything one party knows about one channel.

    `sent_*` is our running total and our signature over it; `received_*` is the
    peer's running total to us with the peer's signature: the proof that gets us
    our money on chain. Deposits are what the chain has confirmed.

    `wire_proof` is set while totals we signed as commitments (`Commit`: an HTTP
    payment the application carries) are above what the peer has acknowledged: a
    resync then hands over only this older proof, so a commitment in flight reaches
    the peer once, by its request, and is not first credited as a wire payment that
    makes the request stale (and its payer pay again).
    """

    terms: ChannelTerms
    channel_id: Bytes32
    we_are_a: bool
    phase: Phase
    expires_at_ms: Uint64 = 0
    deposit_a: Uint256 = 0
    deposit_b: Uint256 = 0
    sent_total: Uint256 = 0
    sent_seq: Uint64 = 0
    sent_signature: Signature | None = None
    received_total: Uint256 = 0
    received_seq: Uint64 = 0
    received_signature: Signature | None = None
    acked_total: Uint256 = 0
    acked_seq: Uint64 = 0
    close: CloseState | None = None
    onchain_close: OnchainClose | None = None
    final_balance_a: Uint256 | None = None
    final_balance_b: Uint256 | None = None
    pending_tx: tuple[str, ...] = ()  # kinds of our transactions the chain does not show yet
    wire_proof: WireProof | None = None

    # -- who is who

    @property
    def me(self) -> Address:
        return self.terms.a if self.we_are_a else self.terms.b

    @property
    def peer(self) -> Address:
        return self.terms.b if self.we_are_a else self.terms.a

    @property
    def my_deposit(self) -> int:
        return self.deposit_a if self.we_are_a else self.deposit_b

    @property
    def peer_deposit(self) -> int:
        return self.deposit_b if self.we_are_a else self.deposit_a

    # -- money

    @property
    def my_balance(self) -> int:
        """What we hold off-chain: our deposit, less what we paid, plus what we can prove."""
        return self.my_deposit - self.sent_total + self.received_total

    @property
    def peer_balance(self) -> int:
        return self.peer_deposit - self.received_total + self.sent_total

    @property
    def total_deposit(self) -> int:
        return self.deposit_a + self.deposit_b

    @property
    def transferred_a(self) -> int:
        return self.sent_total if self.we_are_a else self.received_total

    @property
    def transferred_b(self) -> int:
        return self.received_total if self.we_are_a else self.sent_total

    def split(self) -> tuple[int, int]:
        """(balance_a, balance_b) in our view of both running totals."""
        if self.we_are_a:
            return self.my_balance, self.peer_balance
        return self.peer_balance, self.my_balance

    @property
    def unacked(self) -> int:
        """Payments sent that the peer has not yet confirmed durable."""
        return self.sent_seq - self.acked_seq

    # -- lifecycle

    def moved_to(self, phase: Phase) -> ChannelState:
        """This state in `phase`; refuses a move the lifecycle table does not allow."""
        if phase is self.phase:
            return self
        refuse_move("channel", self.phase, phase, ALLOWED_TRANSITIONS)
        return replace(self, phase=phase)

    def rewound_to(self, phase: Phase) -> ChannelState:
        """This state in the phase the chain shows after a reorganisation: a move the
        lifecycle table allows (via disputed to settled), or one of `REWIND_TRANSITIONS`."""
        if phase in REWIND_TRANSITIONS.get(self.phase, frozenset()):
            return replace(self, phase=phase)
        if phase is Phase.SETTLED and self.phase is not Phase.SETTLED:
            return self.moved_to(Phase.DISPUTED).moved_to(Phase.SETTLED)
        return self.moved_to(phase)

    def evolve(self, **changes: Any) -> ChannelState:
        """A copy with `changes`; like `dataclasses.replace`, several times faster.

        Payments change a channel's state thousands of times a second, and
        `replace` re-runs a frozen dataclass's whole `__init__` each time.
        """
        return _evolve(self, **changes)

    def with_pending(self, kind: str) -> ChannelState:
        if kind in self.pending_tx:
            return self
        return replace(self, pending_tx=(*self.pending_tx, kind))

    def without_pending(self, kind: str) -> ChannelState:
        if kind not in self.pending_tx:
            return self
        return replace(self, pending_tx=tuple(k for k in self.pending_tx if k != kind))


_evolve = make_evolve(ChannelState)
