"""What every handler of the session machine shares: its context, refusals, liveness."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from m2mpay.channel.context import Signer
from m2mpay.crypto import Address, Eip712Domain
from m2mpay.stream.flows import (
    Outputs,
)
from m2mpay.stream.messages import (
    SessionError,
)
from m2mpay.stream.outputs import (
    SendSession,
    SessionCode,
    SessionRefused,
)
from m2mpay.stream.state import SessionPhase, SessionState

__all__ = [
    "LIVE",
    "Result",
    "SessionConfig",
    "SessionContext",
    "Step",
    "due_to_resend",
    "heard",
    "refuse",
    "refuse_peer",
]

Result = tuple[SessionState | None, Outputs]
Step = tuple[SessionState, Outputs]  # a helper's result: always a state
LIVE: Final = frozenset({SessionPhase.ACTIVE, SessionPhase.STOPPING})


@dataclass(frozen=True, slots=True)
class SessionConfig:
    silence_timeout_ms: int = 30_000  # a peer heard of no longer stops the session
    receipt_timeout_ms: int = 30_000  # after a stop, how long to wait for the peer's receipt
    # Session messages die with a crashed process; a party that waits on its peer says
    # its cumulative part again this often (reports and receipts are idempotent).
    resend_ms: int = 2_000


@dataclass(frozen=True, slots=True)
class SessionContext:
    signer: Signer
    domain: Eip712Domain  # the channels' domain; receipts are signed in it
    config: SessionConfig = field(default_factory=SessionConfig)

    @property
    def me(self) -> Address:
        address: Address = self.signer.address
        return address


# -- helpers


def refuse(
    state: SessionState | None, code: SessionCode, message: str, session: bytes | None
) -> Result:
    return state, (SessionRefused(code, message, session),)


def refuse_peer(
    state: SessionState | None,
    peer: Address,
    session: bytes | None,
    code: SessionCode,
    message: str,
) -> Result:
    return state, (
        SessionRefused(code, message, session),
        SendSession(peer, SessionError(session, code.value, message)),
    )


def heard(state: SessionState, now_ms: int) -> SessionState:
    return state.evolve(heard_ms=max(state.heard_ms, now_ms))


def due_to_resend(ctx: SessionContext, state: SessionState, since_ms: int, now: int) -> bool:
    return now - max(since_ms, state.resent_ms) >= ctx.config.resend_ms
