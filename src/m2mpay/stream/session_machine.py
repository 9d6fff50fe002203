"""The session machine as a `Machine` for the durable engine: transition and log."""

from __future__ import annotations

from collections.abc import Callable

from m2mpay.engine import PureMachine
from m2mpay.errors import ChannelError
from m2mpay.stream.context import SessionContext
from m2mpay.stream.inputs import SessionInput
from m2mpay.stream.machine import is_session_refusal, session_key, transition
from m2mpay.stream.outputs import SessionOutput
from m2mpay.stream.state import SessionState

__all__ = ["SessionMachine"]


class SessionMachine(PureMachine[SessionContext, bytes, SessionState, SessionInput, SessionOutput]):
    def __init__(self, context: Callable[[], SessionContext | None]) -> None:
        super().__init__(
            SessionState,
            lambda state: state.session_id,
            context,
            lambda: ChannelError("not_running", "the session manager is not started"),
            transition,
            is_session_refusal,
        )

    def key(self, inp: SessionInput) -> bytes | None:
        return session_key(inp)
