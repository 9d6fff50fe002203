"""From a session's countersigned receipt to the registry's `rate` call.

The registry takes a rating only with the receipt both parties signed and the channel's
state as the hub holds it: the session's channel parameters and deposits (as the node
knows them from the chain) and its unilateral close, if one is under way. A session
with no countersigned receipt cannot be rated: the node says so before any transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from m2mpay.chain.hub import Closing, OnchainChannel
from m2mpay.chain.ledger import Receipt
from m2mpay.chain.registry import MAX_RATING, RatedSession, ServiceRegistry
from m2mpay.channel.state import ChannelState
from m2mpay.crypto import Address, PrivateKey, Signature
from m2mpay.errors import MarketError
from m2mpay.stream import SessionInfo
from m2mpay.stream.receipts import view_of

__all__ = ["RatingProof", "rate_session", "rating_proof"]


@dataclass(frozen=True, slots=True)
class RatingProof:
    """What the registry checks a rating against."""

    session: RatedSession
    channel: OnchainChannel
    closing: Closing | None
    signature_a: Signature
    signature_b: Signature
    rated: Address
    paid: int  # both ways, as the receipt says


def rating_proof(info: SessionInfo, channel: ChannelState) -> RatingProof:
    """The proof of a session of ours over `channel`; `MarketError("no_receipt")` unless
    both parties signed the same receipt."""
    mine, theirs = info.receipt, info.peer_receipt
    if mine is None or theirs is None or view_of(mine) != view_of(theirs):
        raise MarketError(
            "no_receipt",
            f"session 0x{info.session_id.hex()} has no receipt both parties signed "
            "(stop it and wait for the peer's, or it cannot be rated)",
        )
    if channel.channel_id != info.channel_id:
        raise MarketError("no_receipt", "the session ran over another channel")
    terms = channel.terms
    onchain = OnchainChannel(
        terms.a,
        terms.b,
        terms.asset,
        terms.challenge_period,
        terms.nonce,
        channel.deposit_a,
        channel.deposit_b,
    )
    close = channel.onchain_close
    closing = (
        None if close is None else Closing(close.deadline, close.transferred_a, close.transferred_b)
    )
    session = RatedSession(
        mine.session_id,
        mine.channel_id,
        (mine.forward.units, mine.forward.value, mine.forward.paid),
        (mine.backward.units, mine.backward.value, mine.backward.paid),
        mine.started_ms,
        mine.stopped_ms,
    )
    ours, peers = mine.signature, theirs.signature
    signature_a, signature_b = (ours, peers) if channel.we_are_a else (peers, ours)
    return RatingProof(
        session,
        onchain,
        closing,
        signature_a,
        signature_b,
        info.peer,
        mine.forward.paid + mine.backward.paid,
    )


async def rate_session(
    registry: ServiceRegistry, rater: PrivateKey, proof: RatingProof, rating: int
) -> Receipt:
    """Rate the session's other party 1 to `MAX_RATING`; the contract's reason if it refuses."""
    if not 1 <= rating <= MAX_RATING:
        raise MarketError("bad_rating", f"a rating is 1 to {MAX_RATING}, not {rating}")
    return await registry.rate(
        rater,
        proof.session,
        proof.channel,
        proof.signature_a,
        proof.signature_b,
        rating,
        closing=proof.closing,
    )
