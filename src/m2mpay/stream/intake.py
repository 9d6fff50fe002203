"""What a session manager hears besides its API, turned into session machine inputs:
its peers' session messages, its devices' meter readings, its node's durable channel
events and the clock's ticks. Kept apart from the manager so that the manager is
the engine's plumbing and the API, and this the one place that decides which input
what happens around it makes.
"""

from __future__ import annotations

from typing import Final

from m2mpay.channel.outputs import (
    ChannelClosed,
    ChannelDisputed,
    ChannelEvent,
    ChannelExpired,
    ChannelOpened,
    ChannelRejected,
    CloseStarted,
    PaymentReceived,
)
from m2mpay.channel.state import ChannelState
from m2mpay.crypto import Address
from m2mpay.engine import DurableEngine, HostCalls, now_ms
from m2mpay.node import Node
from m2mpay.stream.channels import channel_totals, request_received, still_opening
from m2mpay.stream.index import SessionIndex
from m2mpay.stream.inputs import (
    ChannelTotals,
    MeterReading,
    RequestReceived,
    SessionInput,
    SessionReceived,
    SessionTick,
    StopSession,
)
from m2mpay.stream.messages import SessionMessage, SessionRequest
from m2mpay.stream.outputs import SessionOutput
from m2mpay.stream.state import SessionState
from m2mpay.stream.supplies import Supplies
from m2mpay.stream.supply import SupplyRequest

__all__ = ["SessionIntake"]

_CLOSING_EVENTS: Final = (CloseStarted, ChannelDisputed, ChannelClosed)


class SessionIntake:
    def __init__(
        self,
        node: Node,
        host: HostCalls[SessionInput],
        engine: DurableEngine[bytes, SessionState, SessionInput, SessionOutput],
        index: SessionIndex,
        supplies: Supplies,
        reconcile_for_s: float,
    ) -> None:
        self._node = node
        self._host = host
        self._engine = engine
        self._index = index
        self._supplies = supplies
        self._reconcile_for_s = reconcile_for_s
        self._peer_seen: dict[Address, int] = {}
        self._early_requests: dict[bytes, tuple[Address, SessionRequest]] = {}

    def on_message(self, peer: Address, message: SessionMessage) -> None:
        """A session message from a peer (routed by the node's `Peers`)."""
        now = now_ms()
        self._peer_seen[peer] = now
        if not self._host.running():
            return
        if isinstance(message, SessionRequest):
            if still_opening(self._node, message.channel_id):
                # The buyer saw the channel open on chain before we did: answer once we do.
                self._early_requests[message.channel_id] = (peer, message)
                return
            self._host.handle(self._request_received(peer, message, now))
        else:
            self._host.handle(SessionReceived(peer, message, now))

    def _request_received(
        self, peer: Address, request: SessionRequest, now: int
    ) -> RequestReceived:
        running = self._index.by_channel.get(request.channel_id)
        busy = running is not None and running != request.session_id
        offer = self._supplies.offer(request.offer_id)
        problem = ""
        if offer is not None and request.session_id not in self._engine.states:
            problem = self._supplies.problem(
                SupplyRequest(request.session_id, offer, peer, False, request.supply_terms)
            )
        return request_received(
            self._node, peer, request, offer, busy=busy, now_ms=now, supply_problem=problem
        )

    def meter(self, session_id: bytes, reversed_flow: bool, units: int) -> None:
        """A device's reading: `units` delivered so far in one direction of flow."""
        if self._host.running() and session_id in self._index.live:
            self._host.handle(MeterReading(session_id, reversed_flow, units, now_ms()))

    def on_channel_event(self, event: ChannelEvent, state: ChannelState) -> None:
        """A durable event of one of the node's channels (a listener of the node)."""
        if not self._host.running():
            return
        now = now_ms()
        if isinstance(event, ChannelOpened | ChannelRejected | ChannelExpired):
            early = self._early_requests.pop(state.channel_id, None)
            if early is not None:
                self._host.handle(self._request_received(early[0], early[1], now))
        session_id = self._index.by_channel.get(state.channel_id)
        if session_id is None:
            return
        if isinstance(event, PaymentReceived):
            self._host.handle(
                ChannelTotals(session_id, state.sent_total, state.received_total, now)
            )
        elif isinstance(event, _CLOSING_EVENTS):
            self._host.handle(StopSession(session_id, "the channel is closing", now))

    async def tick(self) -> None:
        """Tell every live or reconciling session the time and when its peer was last seen."""
        now = now_ms()
        for session_id in [*self._index.live, *self._index.reconciling]:
            state = self._engine.states[session_id]
            seen = now if self._node.is_connected(state.peer) else 0
            seen = max(seen, self._peer_seen.get(state.peer, 0))
            if session_id in self._index.reconciling:
                self._reconcile_totals(session_id, state, now)
            self._host.handle(SessionTick(session_id, now, seen))
            await self._engine.yield_if_busy()

    def _reconcile_totals(self, session_id: bytes, state: SessionState, now: int) -> None:
        """Payments in flight when the session ended count once the channel delivers them,
        unless a later session on the channel owns what arrives now."""
        if now - state.stopped_ms >= self._reconcile_for_s * 1000:
            self._index.reconciling.discard(session_id)
        elif self._index.newest_on(state.channel_id) == session_id:
            totals = channel_totals(self._node, state, now)
            if totals is not None:
                self._host.handle(totals)
