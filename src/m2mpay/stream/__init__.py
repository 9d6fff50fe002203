"""Metered sessions: units of a service against channel payments, neither side ever
more than a credit window ahead. `SessionManager` runs them on a `Node`; the
protocol itself is the pure machine in `m2mpay.stream.machine`."""

from m2mpay.stream.info import SessionInfo
from m2mpay.stream.manager import SessionManager, SessionManagerConfig
from m2mpay.stream.messages import FlowTotals, SignedReceipt
from m2mpay.stream.offer import Leader, Offer, ServiceKind, new_offer
from m2mpay.stream.state import SessionPhase
from m2mpay.stream.supply import Supply, SupplyFactory, SupplyRequest

__all__ = [
    "FlowTotals",
    "Leader",
    "Offer",
    "ServiceKind",
    "SessionInfo",
    "SessionManager",
    "SessionManagerConfig",
    "SessionPhase",
    "SignedReceipt",
    "Supply",
    "SupplyFactory",
    "SupplyRequest",
    "new_offer",
]
