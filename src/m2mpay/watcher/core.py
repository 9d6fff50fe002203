"""The watcher's rules as pure functions: no I/O, no clock, no randomness.

- `apply_event` folds a ChannelHub event into what the watcher knows of a channel on
  chain (`ChainView`). Every hub event carries complete values (deposits after the
  deposit, both totals after a close or challenge), so the view keeps, per group of
  fields, the values of the newest event by chain position. That makes folding
  idempotent and order-insensitive: the live chain follower and the per-channel
  back-fill run on registration may deliver the same or older events in any order
  and the view still ends at the chain's state.
- `plan` decides the one action a channel needs now: a `Challenge` with a held proof
  while the challenge period is open and the proof raises a total the party is paid
  from, or `Settle` once the deadline has passed. The watcher performs one action per
  channel at a time and plans again after each one, because each changes the stored
  state the next must name.
- `proof_refusal`, `registration_refusal` check submissions before any signature is
  recovered, so cheap refusals come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from m2mpay.chain.events import (
    ChannelChallenged,
    ChannelClosing,
    ChannelDeposited,
    ChannelOpened,
    ChannelSettled,
    HubEvent,
)
from m2mpay.chain.hub import Closing, OnchainChannel
from m2mpay.crypto import Address, Signature, channel_id

__all__ = [
    "MAX_CHALLENGE_PERIOD",
    "REGISTRATION_WINDOW_S",
    "UINT256_MAX",
    "Action",
    "ChainTime",
    "ChainView",
    "Challenge",
    "ChannelParams",
    "EventPosition",
    "HeldProof",
    "Phase",
    "Settle",
    "apply_event",
    "plan",
    "proof_refusal",
    "registration_refusal",
]

UINT256_MAX: Final = 2**256 - 1
MAX_CHALLENGE_PERIOD: Final = 31_536_000  # the hub refuses longer periods
REGISTRATION_WINDOW_S: Final = 300  # a registration is accepted ±5 min around its issued_at

EventPosition = tuple[int, int]  # (block number, log index): chain order


class Phase(StrEnum):
    """A watched channel's state on chain as the watcher knows it."""

    UNKNOWN = "unknown"  # no event seen yet: not opened, or not yet read
    OPEN = "open"
    CLOSING = "closing"
    SETTLED = "settled"


@dataclass(frozen=True, slots=True)
class ChannelParams:
    """What fixes a channel's id; deposits come from the chain."""

    a: Address
    b: Address
    token: Address
    challenge_period: int
    nonce: int
    id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "id", channel_id(self.a, self.b, self.token, self.challenge_period, self.nonce)
        )

    def peer(self, party: Address) -> Address:
        """The other party; `party` must be a or b."""
        return self.b if party == self.a else self.a

    def is_party(self, address: Address) -> bool:
        return address in (self.a, self.b)

    def onchain(self, view: ChainView) -> OnchainChannel:
        """The storage pre-image the hub expects, with the deposits the chain reported."""
        return OnchainChannel(
            self.a,
            self.b,
            self.token,
            self.challenge_period,
            self.nonce,
            view.deposit_a,
            view.deposit_b,
        )


@dataclass(frozen=True, slots=True)
class HeldProof:
    """The newest total a party's peer has signed: what gets the party its money."""

    transferred: int
    signature: Signature


@dataclass(frozen=True, slots=True)
class ChainView:
    """A watched channel on chain; each group of fields is from its newest event."""

    deposit_a: int = 0
    deposit_b: int = 0
    deposits_at: EventPosition | None = None
    closing: Closing | None = None
    closing_at: EventPosition | None = None
    closer: Address | None = None
    close_block: int | None = None
    settlement: tuple[int, int, bool] | None = None  # balance a, balance b, cooperative
    settled_block: int | None = None

    @property
    def phase(self) -> Phase:
        if self.settlement is not None:
            return Phase.SETTLED
        if self.closing is not None:
            return Phase.CLOSING
        if self.deposits_at is not None:
            return Phase.OPEN
        return Phase.UNKNOWN


def _newer(position: EventPosition, than: EventPosition | None) -> bool:
    return than is None or position > than


def apply_event(view: ChainView, event: HubEvent) -> ChainView:
    """The view after `event` (of this channel); the same object when nothing changes."""
    position = (event.block_number, event.log_index)
    if isinstance(event, ChannelOpened):
        if _newer(position, view.deposits_at):
            return replace(view, deposit_a=event.deposit_a, deposit_b=0, deposits_at=position)
    elif isinstance(event, ChannelDeposited):
        if _newer(position, view.deposits_at):
            return replace(
                view,
                deposit_a=event.deposit_a,
                deposit_b=event.deposit_b,
                deposits_at=position,
            )
    elif isinstance(event, ChannelClosing):
        # A channel closes once: the closer and block are facts whatever came first.
        updated = replace(view, closer=event.closer, close_block=event.block_number)
        if _newer(position, view.closing_at):
            updated = replace(
                updated,
                closing=Closing(event.deadline, event.transferred_a, event.transferred_b),
                closing_at=position,
            )
        return updated if updated != view else view
    elif isinstance(event, ChannelChallenged):
        if _newer(position, view.closing_at):
            return replace(
                view,
                closing=Closing(event.deadline, event.transferred_a, event.transferred_b),
                closing_at=position,
            )
    elif isinstance(event, ChannelSettled) and view.settlement is None:
        return replace(
            view,
            settlement=(event.balance_a, event.balance_b, event.cooperative),
            settled_block=event.block_number,
        )
    return view


@dataclass(frozen=True, slots=True)
class Challenge:
    """Raise `participant`'s total to `transferred` (it signed it) for `beneficiary`."""

    channel: OnchainChannel
    closing: Closing
    participant: Address
    beneficiary: Address
    transferred: int
    signature: Signature

    @property
    def replaced(self) -> int:
        """The total on chain that the proof replaces."""
        if self.participant == self.channel.a:
            return self.closing.transferred_a
        return self.closing.transferred_b


@dataclass(frozen=True, slots=True)
class Settle:
    """Pay both parties from the final totals; anyone may call it after the deadline."""

    channel: OnchainChannel
    closing: Closing


Action = Challenge | Settle


@dataclass(frozen=True, slots=True)
class ChainTime:
    """The chain's clock as the watcher knows it.

    `latest_block` is the newest block's timestamp: the next block cannot be earlier, so
    once it is past a deadline no challenge can succeed. `estimate` is when the next
    block is likely stamped; settlement waits for it to pass the deadline. A challenge
    is tried as long as it may still succeed: a failed one costs gas, a missed one
    costs the party its money.
    """

    latest_block: int
    estimate: int


def _raised(closing: Closing, channel: OnchainChannel, payer: Address, total: int) -> Closing:
    if payer == channel.a:
        return replace(closing, transferred_a=total)
    return replace(closing, transferred_b=total)


def plan(
    params: ChannelParams,
    view: ChainView,
    held: Mapping[Address, HeldProof],
    now: ChainTime,
) -> Action | None:
    """What to do now for a channel, given the proofs held per watched party.

    A challenge is only worth a transaction when it raises the party's payout: a total
    beyond what the payer deposited is clamped by the hub and would change nothing.
    """
    closing = view.closing
    if view.phase is not Phase.CLOSING or closing is None or view.deposits_at is None:
        return None
    channel = params.onchain(view)
    if now.latest_block <= closing.deadline:
        challenge = _best_challenge(params, channel, closing, held)
        if challenge is not None:
            return challenge
    if now.estimate > closing.deadline:
        return Settle(channel, closing)
    return None


def _best_challenge(
    params: ChannelParams,
    channel: OnchainChannel,
    closing: Closing,
    held: Mapping[Address, HeldProof],
) -> Challenge | None:
    for party in (params.a, params.b):
        proof = held.get(party)
        if proof is None:
            continue
        payer = params.peer(party)
        recorded = closing.transferred_a if payer == params.a else closing.transferred_b
        if proof.transferred <= recorded:
            continue
        index = 0 if party == params.a else 1
        before = channel.split(closing)[index]
        after = channel.split(_raised(closing, channel, payer, proof.transferred))[index]
        if after > before:
            return Challenge(channel, closing, payer, party, proof.transferred, proof.signature)
    return None


def proof_refusal(held: HeldProof | None, transferred: int) -> str | None:
    """Why a proof of `transferred` cannot replace `held` (None: it is newer)."""
    if not 0 <= transferred <= UINT256_MAX:
        return "not a uint256"
    current = held.transferred if held is not None else 0
    if transferred <= current:
        return f"not newer than the total held ({current})"
    return None


def registration_refusal(
    params: ChannelParams, party: Address, issued_at: int, now: int
) -> tuple[str, str, str] | None:
    """(code, message, field) refusing a registration before its signature is checked.

    Whether it replays an older registration is checked after the signature, so an
    unsigned request learns nothing about what is registered.
    """
    if not params.is_party(party):
        return ("not_a_party", f"{party} is neither party a nor party b", "party")
    if abs(issued_at - now) > REGISTRATION_WINDOW_S:
        return (
            "issued_at_out_of_range",
            f"issued_at {issued_at} is more than {REGISTRATION_WINDOW_S} s from now ({now})",
            "issued_at",
        )
    return None
