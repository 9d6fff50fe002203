"""Metered sessions on a running node: the session machine fed by peers, meters, the
channel and the clock (`SessionIntake`, stream/intake.py), durably, with its outputs
performed in one dispatcher (`SessionDispatch`, stream/dispatch.py).

The session machine runs on its own `DurableEngine` (log, then act) beside the
node's channel engine. Money moves only as channel payments: a `PayUpTo` is
turned into one `Node.pay_nowait` for the difference between the target and
what the channel shows paid, so performing it again after a crash pays nothing
twice. The seller learns of payments from the node's durable channel events.
Meters and actuators are `Supply` devices; the machine's permits switch them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from m2mpay.crypto import channel_domain
from m2mpay.engine import EngineHost, EventFanOut, EventSource, now_ms
from m2mpay.errors import StreamError
from m2mpay.node import Node
from m2mpay.store import Store
from m2mpay.stream.channels import channel_for, channel_totals
from m2mpay.stream.context import SessionConfig, SessionContext
from m2mpay.stream.dispatch import SessionDispatch
from m2mpay.stream.index import LIVE, SessionIndex
from m2mpay.stream.info import SessionInfo
from m2mpay.stream.inputs import (
    ExtendSession,
    Reverse,
    SessionInput,
    SetPrice,
    StartSession,
    StopSession,
)
from m2mpay.stream.intake import SessionIntake
from m2mpay.stream.messages import SESSION_MESSAGE_TYPES
from m2mpay.stream.offer import Offer, offer_problem
from m2mpay.stream.outputs import SessionEvent, SessionOutput, SessionRefused
from m2mpay.stream.session_machine import SessionMachine
from m2mpay.stream.state import SessionPhase, SessionState
from m2mpay.stream.supplies import Supplies
from m2mpay.stream.supply import SupplyFactory, SupplyVet

__all__ = ["SessionListener", "SessionManager", "SessionManagerConfig"]

SessionListener = Callable[[SessionEvent, SessionInfo], None]


@dataclass(frozen=True, slots=True)
class SessionManagerConfig:
    tick_interval_s: float = 1.0
    snapshot_every: int = 50_000
    session: SessionConfig = field(default_factory=SessionConfig)
    # A session that ended on our own receipt is reconciled with its peer if the peer
    # comes back within this long (m2mpay.stream.reconcile).
    reconcile_for_s: float = 86_400.0


class SessionManager(
    EngineHost[bytes, SessionState, SessionInput, SessionOutput],
    EventSource[SessionEvent, SessionInfo],
):
    """Sells and buys metered services over a node's channels; see the module docstring.

    `feed_back` makes the devices through which we, as a buyer, deliver when a
    session is reversed (a car feeding the grid); a seller's devices come with its
    offers (`publish`). Listeners (`add_listener`) hear of every session event with
    the session's `SessionInfo`.
    """

    _what = "session manager"
    _item = "session"
    _log = logging.getLogger("m2mpay.stream")
    _refused = SessionRefused

    def __init__(
        self,
        node: Node,
        store: Store,
        *,
        config: SessionManagerConfig | None = None,
        feed_back: SupplyFactory | None = None,
    ) -> None:
        self.node = node
        self.config = config or SessionManagerConfig()
        self._ctx: SessionContext | None = None
        super().__init__(
            SessionMachine(lambda: self._ctx), store, snapshot_every=self.config.snapshot_every
        )
        # The devices' meter readings are inputs for the intake, which is made just below
        # with these supplies: the lambda finds it when a device first reports.
        self._supplies = Supplies(
            feed_back,
            lambda session, back, units: self._intake.meter(session, back, units),  # noqa: PLW0108
        )
        self._index = SessionIndex(int(self.config.reconcile_for_s * 1000))
        self._intake = SessionIntake(
            node,
            self._calls,
            self._engine,
            self._index,
            self._supplies,
            self.config.reconcile_for_s,
        )
        self._events: EventFanOut[SessionEvent, SessionInfo] = EventFanOut()
        self._dispatch: SessionDispatch = SessionDispatch(
            node, self._supplies, self._calls, self._engine.state, self._announce
        )
        node.peers.route(SESSION_MESSAGE_TYPES, self._intake.on_message)
        node.add_listener(self._intake.on_channel_event)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Recover sessions from the store and resume the live ones (the node runs)."""
        chain = self.node.chain
        self._ctx = SessionContext(
            self.node.key, channel_domain(chain.chain_id, chain.hub), self.config.session
        )
        await self._open_engine()
        self._run_engine()
        self._spawn(self._every(self.config.tick_interval_s, self._intake.tick))
        for session_id in list(self._index.live):
            await self._resume(session_id)

    async def stop(self) -> None:
        if not await self._stop_engine():
            return
        await self._supplies.stop_all()
        await self._close_store()

    def _refusal(self, code: str, message: str) -> StreamError:
        return StreamError(code, message)

    def _handle(self, inp: SessionInput) -> tuple[SessionOutput, ...]:
        outputs = super()._handle(inp)
        self._dispatch.freeze(outputs)
        return outputs

    def _on_change(self, session_id: bytes, state: SessionState) -> None:
        self._index.update(session_id, state, now_ms())

    def _announce(self, event: SessionEvent) -> None:
        self._waits.changed(event.session_id)
        state = self._engine.state(event.session_id)
        self._events.publish(event, SessionInfo.of(state) if state is not None else None)

    async def _resume(self, session_id: bytes) -> None:
        """After a restart: switch devices back on, read meters and the channel again."""
        state = self._engine.states[session_id]
        await self._supplies.resume(state)
        totals = channel_totals(self.node, state, now_ms())
        if totals is not None:
            self._handle(totals)

    # ------------------------------------------------------------------ offers

    def publish(self, offer: Offer, supply: SupplyFactory, vet: SupplyVet | None = None) -> Offer:
        """Sell under `offer`; `supply` makes the device for each session it accepts,
        and `vet`, if given, says why the device would refuse a request's terms."""
        if offer.seller != self.node.address:
            raise StreamError("invalid_offer", "an offer must name this node as its seller")
        problem = offer_problem(offer, now_ms())
        if problem is not None:
            raise StreamError("invalid_offer", problem)
        self._supplies.publish(offer, supply, vet)
        if self._running:
            for session_id in list(self._index.live):
                state = self._engine.states[session_id]
                if state.we_sell and state.offer.offer_id == offer.offer_id:
                    self._spawn(self._resume(session_id))
        return offer

    def withdraw(self, offer_id: bytes) -> None:
        """Accept no new sessions on an offer; running ones go on."""
        self._supplies.withdraw(offer_id)

    def offers(self) -> list[Offer]:
        return self._supplies.offers()

    # ------------------------------------------------------------------ the API

    def sessions(self) -> list[SessionInfo]:
        return [SessionInfo.of(state) for state in self._engine.states.values()]

    def session(self, session_id: bytes) -> SessionInfo:
        state = self._engine.states.get(session_id)
        if state is None:
            raise StreamError("unknown_session", f"no session 0x{session_id.hex()}")
        return SessionInfo.of(state)

    async def start_session(
        self,
        offer: Offer,
        *,
        channel_id: bytes | None = None,
        deposit: int = 0,
        budget: int = 0,
        target_units: int = 0,
        limit_price: int | None = None,
        allow_reverse: bool = False,
        feed_back: SupplyFactory | None = None,
        endpoint: str | None = None,
        supplies: bytes | None = None,
        supply_terms: bytes = b"",
        session_id: bytes | None = None,
        timeout: float = 30.0,
    ) -> SessionInfo:
        """Buy under `offer` over a channel with its seller; returns once the seller
        runs the session. Without `channel_id` a free open channel with the seller in
        the offer's asset is used, or, with `deposit`, a new one is opened. `feed_back`
        makes the device that delivers if the session is reversed (else the manager's).
        `supplies` names the sale of ours this purchase supplies (see `Resale`);
        `supply_terms` goes to the seller's device (see `SessionRequest`); terms sealed
        to the session name its id beforehand (`session_id`, 32 random bytes)."""
        channel = await channel_for(
            self.node, offer, channel_id, deposit, endpoint, busy=self._index.by_channel
        )
        if budget and budget > channel.balance_mine:
            raise StreamError(
                "insufficient_balance",
                f"a budget of {budget} is above the channel balance of {channel.balance_mine}",
            )
        if session_id is None:
            session_id = secrets.token_bytes(32)
        elif len(session_id) != 32 or session_id in self._engine.states:
            raise StreamError("invalid_session_id", "a new session id is 32 bytes never used")
        if feed_back is not None:
            self._supplies.feed_back_for(session_id, feed_back)
        inp = StartSession(
            session_id,
            offer,
            channel.channel_id,
            offer.price if limit_price is None else limit_price,
            budget,
            target_units,
            allow_reverse,
            channel.sent_total,
            channel.received_total,
            now_ms(),
            supplies,
            supply_terms,
        )
        self._request(inp)
        state = await self._wait(
            session_id, lambda s: s.phase is not SessionPhase.REQUESTED, timeout
        )
        if state.phase is SessionPhase.REJECTED:
            raise StreamError("rejected", state.stop_reason)
        return SessionInfo.of(state)

    def extend_session(self, session_id: bytes, *, target_units: int, budget: int) -> SessionInfo:
        """Want more of a running purchase: a new target and budget, neither lower (0 is
        no limit). A buyer that pays first pays ahead for the new units at once."""
        self._request(ExtendSession(session_id, target_units, budget, now_ms()))
        return self.session(session_id)

    def set_price(self, session_id: bytes, price: int) -> None:
        """A seller's price signal: the buyer accepts it for later units, or stops."""
        self._request(SetPrice(session_id, price, now_ms()))

    def reverse(self, session_id: bytes, reversed_now: bool) -> None:
        """Switch the direction of supply (and of payment) of a running session."""
        self._request(Reverse(session_id, reversed_now, now_ms()))

    async def stop_session(
        self,
        session_id: bytes,
        reason: str = "stopped by the application",
        *,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> SessionInfo:
        """Stop; with `wait`, return once the final receipt is signed."""
        self._request(StopSession(session_id, reason, now_ms()))
        if wait:
            return await self.wait_stopped(session_id, timeout=timeout)
        return self.session(session_id)

    async def wait_stopped(self, session_id: bytes, *, timeout: float = 60.0) -> SessionInfo:
        state = await self._wait(session_id, lambda s: s.phase not in LIVE, timeout)
        return SessionInfo.of(state)
