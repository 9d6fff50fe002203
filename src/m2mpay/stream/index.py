"""Which sessions need a session manager's attention, kept up to date on every change
of state: the live ones (ticked, resumed after a restart), those that stopped on our
own receipt and are still reconciled with their peer, the session running on each
channel, and the newest session on each channel (the one a late payment belongs to)."""

from __future__ import annotations

from typing import Final

from m2mpay.stream.reconcile import awaits_countersignature
from m2mpay.stream.state import SessionPhase, SessionState

__all__ = ["LIVE", "SessionIndex"]

LIVE: Final = frozenset({SessionPhase.REQUESTED, SessionPhase.ACTIVE, SessionPhase.STOPPING})


class SessionIndex:
    def __init__(self, reconcile_for_ms: int) -> None:
        self._reconcile_for_ms = reconcile_for_ms
        self.live: set[bytes] = set()
        self.reconciling: set[bytes] = set()
        self.by_channel: dict[bytes, bytes] = {}  # channel → its running session
        self._newest: dict[bytes, tuple[int, bytes]] = {}  # channel → (started, session)

    def update(self, session_id: bytes, state: SessionState, now_ms: int) -> None:
        newest = self._newest.get(state.channel_id)
        if newest is None or newest < (state.started_ms, session_id):
            self._newest[state.channel_id] = (state.started_ms, session_id)
        recent = now_ms - state.stopped_ms < self._reconcile_for_ms
        if awaits_countersignature(state) and recent:
            self.reconciling.add(session_id)
        else:
            self.reconciling.discard(session_id)
        if state.phase in LIVE:
            self.live.add(session_id)
            self.by_channel[state.channel_id] = session_id
        else:
            self.live.discard(session_id)
            if self.by_channel.get(state.channel_id) == session_id:
                del self.by_channel[state.channel_id]

    def newest_on(self, channel_id: bytes) -> bytes | None:
        newest = self._newest.get(channel_id)
        return newest[1] if newest is not None else None
