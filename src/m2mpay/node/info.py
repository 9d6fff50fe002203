"""Read-only views the node hands to applications."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from m2mpay.channel.state import ChannelState, Phase
from m2mpay.crypto import Address

__all__ = ["ChannelInfo", "PaymentHandle", "PaymentWait"]


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel as its owner sees it; amounts in the asset's smallest unit."""

    channel_id: bytes
    peer: Address
    we_are_a: bool
    phase: Phase
    asset: Address
    challenge_period: int
    deposit_mine: int
    deposit_peer: int
    balance_mine: int
    balance_peer: int
    sent_total: int
    received_total: int
    acked_total: int
    in_flight: int  # payments sent and not yet confirmed durable by the peer
    payments_sent: int  # balance proofs we signed on this channel
    payments_received: int  # newer proofs the peer sent us
    final_balance_mine: int | None

    @classmethod
    def of(cls, state: ChannelState) -> ChannelInfo:
        final_mine = state.final_balance_a if state.we_are_a else state.final_balance_b
        return cls(
            channel_id=state.channel_id,
            peer=state.peer,
            we_are_a=state.we_are_a,
            phase=state.phase,
            asset=state.terms.asset,
            challenge_period=state.terms.challenge_period,
            deposit_mine=state.my_deposit,
            deposit_peer=state.peer_deposit,
            balance_mine=state.my_balance,
            balance_peer=state.peer_balance,
            sent_total=state.sent_total,
            received_total=state.received_total,
            acked_total=state.acked_total,
            in_flight=state.unacked,
            payments_sent=state.sent_seq,
            payments_received=state.received_seq,
            final_balance_mine=final_mine,
        )

    @property
    def id_hex(self) -> str:
        return "0x" + self.channel_id.hex()


class PaymentWait(enum.Enum):
    """How long `Node.pay` waits before it returns a payment."""

    QUEUED = "queued"  # signed and queued: a crash now may still lose it
    DURABLE = "durable"  # in our own log: it survives our crash
    ACKNOWLEDGED = "acknowledged"  # the payee holds it durably


@dataclass(frozen=True, slots=True)
class PaymentHandle:
    """A payment the node has accepted; `acknowledged` resolves when the payee made it durable."""

    channel_id: bytes
    amount: int
    total: int
    seq: int
    acknowledged: asyncio.Future[None]
