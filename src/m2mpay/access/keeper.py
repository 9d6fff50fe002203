"""The host of the grant machine: grants kept durable, the broker kept in step with them.

`GrantKeeper` logs each grant input before it acts (`m2mpay.engine`), performs what
the machine outputs on the `Broker` in one place (`_GrantDispatch`; clients of ended
grants are removed behind it, one at a time, never ahead of a revocation), revokes each
grant the moment its paid time ends (one timer on the earliest end, not a poll) and
reads every live grant's used seconds into its session's meter once a second.

After a restart, and whenever the broker failed a command, `reconcile` makes the
broker match the grants: live ones readable, the rest not, clients of ended grants
gone. A grant whose end passed while the node was down is revoked before anything
else happens.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from m2mpay.access.broker import Broker, TopicAccess
from m2mpay.access.grant import (
    AllowRead,
    Expire,
    Grant,
    GrantEnded,
    GrantInput,
    GrantOpened,
    GrantOutput,
    GrantPhase,
    GrantRefused,
    Permitted,
    RemoveClient,
    RevokeRead,
    grant_key,
    transition,
)
from m2mpay.access.sealed import Credentials
from m2mpay.crypto import Address
from m2mpay.engine import EngineHost, PlainLog, now_ms
from m2mpay.errors import AccessError, M2MPayError, StoreError
from m2mpay.store import Store
from m2mpay.stream.supply import MeterReport, Supply, SupplyRequest

__all__ = ["GrantKeeper", "GrantedSupply", "KeeperConfig"]

log = logging.getLogger("m2mpay.access")


@dataclass(frozen=True, slots=True)
class KeeperConfig:
    meter_every_s: float = 1.0
    reconcile_every_s: float = 30.0
    reserve_for_s: float = 60.0  # how long a vetted name waits for its session to start
    snapshot_every: int = 10_000


class _GrantMachine(PlainLog[bytes, Grant, GrantInput, GrantOutput]):
    def __init__(self) -> None:
        super().__init__(Grant, lambda grant: grant.session_id)

    def key(self, inp: GrantInput) -> bytes:
        return grant_key(inp)

    def decode_record(self, data: bytes) -> GrantInput:
        # A record naming another plain type (a damaged or foreign store) would otherwise
        # reach the machine and fail there, not as the store's error.
        inp = super().decode_record(data)
        if not isinstance(inp, GrantOpened | Permitted | Expire | GrantEnded):
            raise StoreError(f"a grant log record holds a {type(inp).__name__}")
        return inp

    def transition(
        self, state: Grant | None, inp: GrantInput
    ) -> tuple[Grant | None, tuple[GrantOutput, ...]]:
        return transition(state, inp)

    def is_refusal(
        self, before: Grant | None, after: Grant | None, outputs: tuple[GrantOutput, ...]
    ) -> bool:
        return after is before and any(isinstance(o, GrantRefused) for o in outputs)


class _Removals:
    """Clients of ended grants, removed in the background one at a time. A removal is
    not urgent (the grant's read access was revoked first) and costs the broker two
    changes, each the dearer the more clients it holds; sent in line, removals queued on
    the broker's one thread ahead of revocations and made them late by seconds at a
    thousand clients (`m2mpay bench mqtt`). One at a time, at most one is ever ahead."""

    def __init__(self, broker: Broker, on_failure: Callable[[], None]) -> None:
        self._broker = broker
        self._on_failure = on_failure
        self._pending: dict[str, None] = {}  # in the order they came
        self._current: str | None = None
        self._wake = asyncio.Event()
        self._removed = asyncio.Event()

    def add(self, username: str) -> None:
        self._pending[username] = None
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                username = next(iter(self._pending))
                self._current = username
                await self._remove(username)

    async def settle(self, username: str) -> None:
        """Before a name is made again: the removal of its last client done, not pending."""
        while self._current == username:
            self._removed.clear()
            await self._removed.wait()
        if username in self._pending:
            await self._remove(username)

    async def _remove(self, username: str) -> None:
        try:
            await self._broker.remove_client(username)
        except M2MPayError as exc:
            log.warning("the broker did not remove a client: %s", exc)
            self._on_failure()
        finally:
            self._pending.pop(username, None)
            if self._current == username:
                self._current = None
            self._removed.set()


class _GrantDispatch:
    """The broker commands the grants' outputs make, in order (removals of clients
    handed to `_Removals`); a failed one leaves the broker to the next reconciliation."""

    def __init__(self, broker: Broker, removals: _Removals, on_failure: Callable[[], None]) -> None:
        self._broker = broker
        self._removals = removals
        self._on_failure = on_failure

    async def perform(self, outputs: list[GrantOutput]) -> None:
        for output in outputs:
            try:
                if isinstance(output, AllowRead):
                    await self._broker.allow(
                        output.username, TopicAccess(output.topic, True, False)
                    )
                elif isinstance(output, RevokeRead):
                    await self._broker.revoke(output.username, output.topic)
                elif isinstance(output, RemoveClient):
                    self._removals.add(output.username)
            except M2MPayError as exc:
                log.warning("the broker did not take %s: %s", type(output).__name__, exc)
                self._on_failure()

    def perform_refusal(self, outputs: tuple[GrantOutput, ...]) -> None:
        for output in outputs:
            if isinstance(output, GrantRefused):
                log.debug("grant input refused: %s", output.message)


class GrantKeeper(EngineHost[bytes, Grant, GrantInput, GrantOutput]):
    """See the module docstring."""

    _what = "grant keeper"
    _item = "grant"
    _log = log
    _refused = GrantRefused

    def __init__(self, broker: Broker, store: Store, config: KeeperConfig | None = None) -> None:
        self.config = config or KeeperConfig()
        super().__init__(_GrantMachine(), store, snapshot_every=self.config.snapshot_every)
        self.broker = broker
        self._removals = _Removals(broker, self._broker_failed)
        self._dispatch = _GrantDispatch(broker, self._removals, self._broker_failed)
        self._ends: list[tuple[int, bytes]] = []  # (paid_until_ms, session) of live grants
        self._ends_changed = asyncio.Event()
        self._meters: dict[bytes, MeterReport] = {}
        self._reserved: dict[str, tuple[bytes, float]] = {}  # name -> (session, until)
        self._dirty = False

    # -- lifecycle

    async def start(self) -> None:
        await self._open_engine()
        self._run_engine()
        now = now_ms()
        for grant in list(self._engine.states.values()):
            if grant.phase is GrantPhase.LIVE and grant.paid_until_ms <= now:
                self._handle(Expire(grant.session_id, now))
        await self._engine.durable()
        await self.reconcile()
        self._spawn(self._expiries())
        self._spawn(self._removals.run())
        self._spawn(self._every(self.config.meter_every_s, self._read_meters))
        self._spawn(self._every(self.config.reconcile_every_s, self._reconcile_if_dirty))

    async def stop(self) -> None:
        if await self._stop_engine():
            await self._close_store()

    def _refusal(self, code: str, message: str) -> AccessError:
        return AccessError(code, message)

    def _on_change(self, key: bytes, state: Grant) -> None:
        self._waits.changed(key)
        if state.phase is GrantPhase.LIVE:
            heapq.heappush(self._ends, (state.paid_until_ms, key))
            self._ends_changed.set()

    # -- what a feed's device asks

    def grants(self) -> list[Grant]:
        return list(self._engine.states.values())

    def grant(self, session_id: bytes) -> Grant | None:
        return self._engine.state(session_id)

    def holder(self, username: str) -> bytes | None:
        """The session holding a client name: a grant not ended, or a vetted request
        whose session has not started yet."""
        for grant in self._engine.states.values():
            if grant.username == username and grant.phase is not GrantPhase.ENDED:
                return grant.session_id
        reserved = self._reserved.get(username)
        if reserved is not None and reserved[1] > time.monotonic():
            return reserved[0]
        return None

    def reserve(self, username: str, session_id: bytes) -> None:
        """Hold a name for a vetted request until its session starts (or a while)."""
        self._reserved[username] = (session_id, time.monotonic() + self.config.reserve_for_s)

    async def open(
        self, session_id: bytes, buyer: Address, username: str, password: str, topic: str
    ) -> Grant:
        """A session on a feed starts: its grant logged, then its client made on the
        broker (again after a restart: the broker may have lost it meanwhile)."""
        resumed = self._engine.state(session_id) is not None
        self._request(GrantOpened(session_id, buyer, username, topic, now_ms()))
        self._reserved.pop(username, None)
        await self._engine.durable()
        await self._removals.settle(username)  # a name reused after its grant ended
        try:
            await self.broker.add_client(username, password)
        except AccessError as exc:
            # Asked for by name, not by listing every client: that list grows with the
            # grants, and so would each grant's time.
            if exc.code != "name_taken":
                raise
            if not resumed:
                # Not ours from before a restart, but a client an ended grant left behind
                # (its removal failed): its old password must not read this grant.
                await self.broker.remove_client(username)
                await self.broker.add_client(username, password)
        grant = self._engine.state(session_id)
        assert grant is not None
        return grant

    def attach(self, session_id: bytes, meter: MeterReport) -> None:
        self._meters[session_id] = meter

    def detach(self, session_id: bytes) -> None:
        self._meters.pop(session_id, None)

    def permit(self, session_id: bytes, seconds: int) -> None:
        self._request(Permitted(session_id, seconds, now_ms()))

    def end(self, session_id: bytes) -> None:
        self.detach(session_id)
        self._request(GrantEnded(session_id, now_ms()))

    # -- keeping the broker in step

    async def reconcile(self) -> None:
        """Make the broker match the grants (see the module docstring)."""
        self._dirty = False
        try:
            # One read of every client's access, not a round trip a client: after a
            # restart a broker may hold a thousand.
            held_by = await self.broker.accesses()
            names = held_by.keys()
            readable: dict[str, set[str]] = {}
            for grant in self._engine.states.values():
                if grant.phase is GrantPhase.ENDED:
                    if grant.username in names and self.holder(grant.username) is None:
                        await self.broker.remove_client(grant.username)
                    continue
                topics = readable.setdefault(grant.username, set())
                if grant.phase is GrantPhase.LIVE:
                    topics.add(grant.topic)
            for username, topics in readable.items():
                if username not in names:
                    continue  # its device makes it again with the password it was sent
                held = {a.topic for a in held_by[username] if a.read}
                for topic in held - topics:
                    await self.broker.revoke(username, topic)
                for topic in topics - held:
                    await self.broker.allow(username, TopicAccess(topic, True, False))
        except M2MPayError as exc:
            log.warning("could not bring the broker in step with the grants: %s", exc)
            self._dirty = True

    def _broker_failed(self) -> None:
        self._dirty = True

    async def _reconcile_if_dirty(self) -> None:
        if self._dirty:
            await self.reconcile()

    # -- time

    async def _expiries(self) -> None:
        """Revoke each grant when its paid time ends: sleep until the earliest end."""
        while True:
            now = now_ms()
            while self._ends and self._ends[0][0] <= now:
                _, session_id = heapq.heappop(self._ends)
                grant = self._engine.state(session_id)
                # An entry of an end that moved on is stale: the new end has its own.
                live = grant is not None and grant.phase is GrantPhase.LIVE
                if live and grant is not None and grant.paid_until_ms <= now:
                    self._handle(Expire(session_id, now))
                    self._report(session_id, now)
            self._ends_changed.clear()
            delay = (self._ends[0][0] - now) / 1000 if self._ends else 3600.0
            try:
                async with asyncio.timeout(max(0.0, delay)):
                    await self._ends_changed.wait()
            except TimeoutError:
                pass

    async def _read_meters(self) -> None:
        now = now_ms()
        for session_id in list(self._meters):
            self._report(session_id, now)

    def _report(self, session_id: bytes, now: int) -> None:
        meter = self._meters.get(session_id)
        grant = self._engine.state(session_id)
        if meter is not None and grant is not None:
            meter(grant.used_s(now))


class GrantedSupply(Supply):
    """The device of a session that a grant delivers: the buyer's client made on the
    broker with its sealed credentials, and read access to `topic` kept by the keeper.
    By the second (`GrantSupply`) or by the message (`MessageSupply`)."""

    def __init__(
        self, keeper: GrantKeeper, request: SupplyRequest, credentials: Credentials, topic: str
    ) -> None:
        self._keeper = keeper
        self._request = request
        self._credentials = credentials
        self._topic = topic

    @property
    def session_id(self) -> bytes:
        return self._request.session_id

    async def _open_grant(self) -> None:
        request, credentials = self._request, self._credentials
        await self._keeper.open(
            request.session_id,
            request.peer,
            credentials.username,
            credentials.password,
            self._topic,
        )
