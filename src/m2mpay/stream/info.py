"""Read-only views of sessions for applications."""

from __future__ import annotations

from dataclasses import dataclass

from m2mpay.crypto import Address
from m2mpay.stream.messages import FlowTotals, SignedReceipt
from m2mpay.stream.offer import Offer
from m2mpay.stream.state import SessionPhase, SessionState

__all__ = ["SessionInfo"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as one party sees it. `forward` is the offer's direction (the seller
    delivers, the buyer pays); `backward` the reversed one."""

    session_id: bytes
    offer: Offer
    channel_id: bytes
    peer: Address
    we_sell: bool
    phase: SessionPhase
    price: int
    reversed: bool
    forward: FlowTotals
    backward: FlowTotals
    started_ms: int
    stopped_ms: int
    stop_reason: str
    receipt: SignedReceipt | None  # ours, once signed
    peer_receipt: SignedReceipt | None  # the peer's, once received
    supplies: bytes | None = None  # a purchase: the sale of ours it supplies

    @classmethod
    def of(cls, state: SessionState) -> SessionInfo:
        return cls(
            session_id=state.session_id,
            offer=state.offer,
            channel_id=state.channel_id,
            peer=state.peer,
            we_sell=state.we_sell,
            phase=state.phase,
            price=state.price,
            reversed=state.reversed,
            forward=state.forward.totals(),
            backward=state.backward.totals(),
            started_ms=state.started_ms,
            stopped_ms=state.stopped_ms,
            stop_reason=state.stop_reason,
            receipt=state.my_receipt,
            peer_receipt=state.peer_receipt,
            supplies=state.supplies,
        )

    @property
    def countersigned(self) -> bool:
        """Both parties signed the same totals."""
        mine, theirs = self.receipt, self.peer_receipt
        return (
            mine is not None
            and theirs is not None
            and (mine.forward, mine.backward) == (theirs.forward, theirs.backward)
        )

    @property
    def id_hex(self) -> str:
        return "0x" + self.session_id.hex()
