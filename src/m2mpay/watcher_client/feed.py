"""`WatcherFeed`: keeps a watcher up to date for one node.

The feed listens to the node (`Node.add_listener`, called once an event is durable).
When a channel opens on chain it registers the channel with the watcher, signing the
`WatchRegistration` with the node's key; each time a payment arrives it hands the
watcher the newest proof the peer signed. On start it registers every channel that is
open, closing or disputed, and hands over its newest proof: tokens live in memory
only, and a newer registration replaces the old token at the watcher.

- **Coalesced.** Only a channel's newest total matters to a watcher (a larger total
  signed by the same party replaces a smaller one), so a channel that receives
  thousands of payments while a push is under way sends one more push, not thousands.
- **One background task**, which pushes up to `concurrency` channels at a time. The
  listener only notes what changed: it runs on the node's dispatcher and must not wait.
- **Retries.** A watcher that cannot be reached pauses the feed with exponential
  backoff (per watcher, so a watcher that comes back is not hit by every channel at
  once); nothing is dropped meanwhile. A `stale` answer means the watcher already holds
  that total or a newer one: done. An unknown or replaced token means register again.
  A proof refused as invalid is logged and dropped (a newer one will follow); a refused
  registration is logged and tried again after the longest backoff.

The watcher may be anything the node layer calls a `Watchtower`: a `Watcher` in this
process, a `WatcherClient` (HTTP), or a device's `HostAccess.watchtower`, which relays
through the device's host so a device needs no HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from m2mpay.channel.messages import ChannelTerms
from m2mpay.channel.outputs import ChannelEvent
from m2mpay.channel.state import FINAL_PHASES, ChannelState, Phase
from m2mpay.crypto import Address, Signature
from m2mpay.errors import ContractError
from m2mpay.lifecycle import Startable
from m2mpay.node import Node
from m2mpay.node.watch import (
    ProofUpdate,
    SignedRegistration,
    TowerIdentity,
    WatchErrorKind,
    WatchRefused,
    Watchtower,
    WatchUnavailable,
)
from m2mpay.watcher.core import REGISTRATION_WINDOW_S
from m2mpay.watcher.service import Watcher
from m2mpay.watcher_client.client import WatcherClient
from m2mpay.watcher_client.towers import as_watchtower

__all__ = ["FeedChannel", "FeedConfig", "WatcherFeed"]

log = logging.getLogger("m2mpay.watcher_client.feed")

_WATCHED_PHASES: Final = frozenset({Phase.OPEN, Phase.CLOSING, Phase.DISPUTED})
# A re-registration must be dated after the one the watcher holds, which a restart
# within the same second would not be: later dates are tried, within the window the
# watcher accepts around its clock.
_MAX_AHEAD_S: Final = REGISTRATION_WINDOW_S - 60


@dataclass(frozen=True, slots=True)
class FeedConfig:
    retry_base_s: float = 0.5  # first pause after a failure; doubles up to retry_max_s
    retry_max_s: float = 30.0
    concurrency: int = 32  # channels pushed at the same time


@dataclass(frozen=True, slots=True)
class FeedChannel:
    """A channel as the feed sees it."""

    channel_id: bytes
    registered: bool
    held: int  # the watcher holds a proof of at least this total
    newest: int  # the newest total the peer signed us
    problem: str | None  # the last refusal, if any

    @property
    def synced(self) -> bool:
        return self.registered and self.held >= self.newest


@dataclass(slots=True)
class _Channel:
    channel_id: bytes
    terms: ChannelTerms
    party: Address
    token: str | None = None
    newest: int = 0
    signature: Signature | None = None
    held: int = 0
    issued_floor: int = 0  # the next registration is dated at least this
    issue_step: int = 1
    failures: int = 0  # refusals in a row, for this channel's backoff
    retry_at: float = 0.0  # loop time before which the channel is left alone
    problem: str | None = None

    @property
    def dirty(self) -> bool:
        return self.token is None or self.newest > self.held


class WatcherFeed(Startable):
    """Keeps `watcher` up to date with `node`'s channels (see the module's docstring).

    Start it after the node (it reads the node's recovered channels) and stop it
    before; `wait_synced` returns once the watcher holds everything there is.
    """

    def __init__(
        self,
        node: Node,
        watcher: Watchtower | Watcher | WatcherClient,
        *,
        config: FeedConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._node = node
        self._tower = as_watchtower(watcher)
        self._config = config or FeedConfig()
        self._clock = clock
        self._channels: dict[bytes, _Channel] = {}
        self._dirty: dict[bytes, None] = {}  # insertion-ordered set: oldest change first
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()  # set exactly when nothing is dirty
        self._synced.set()
        self._identity: TowerIdentity | None = None
        self._outage_failures = 0
        self._unreachable = 0
        self._resume_at = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle

    async def start(self) -> None:
        """Watch every channel the node has on chain, and every one that opens later."""
        with contextlib.suppress(WatchUnavailable):  # checked again before registering
            await self._check_identity()
        self._node.add_listener(self._on_event)
        for state in self._node.channel_states():
            self._track(state)
        self._task = asyncio.ensure_future(self._run())
        self._task.add_done_callback(self._task_done)
        log.info(
            "feeding a watcher for %s: %d channels to register",
            self._node.address,
            len(self._channels),
        )

    async def stop(self) -> None:
        self._node.remove_listener(self._on_event)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the watcher feed stopped: %r", task.exception(), exc_info=task.exception())

    # -- what it knows

    def channel(self, channel_id: bytes) -> FeedChannel | None:
        entry = self._channels.get(channel_id)
        if entry is None:
            return None
        return FeedChannel(
            channel_id, entry.token is not None, entry.held, entry.newest, entry.problem
        )

    def channels(self) -> list[FeedChannel]:
        return [view for c in self._channels if (view := self.channel(c)) is not None]

    @property
    def unreachable(self) -> int:
        """Requests so far that found the watcher unreachable."""
        return self._unreachable

    @property
    def pending(self) -> int:
        """Channels with something the watcher does not have yet."""
        return len(self._dirty)

    async def wait_synced(self) -> None:
        """Return once every watched channel is registered and its newest proof held.

        Watched channels are those the node has told the feed of: a node logs an
        event before it tells its listeners, so its own view may be a moment ahead.
        """
        await self._synced.wait()

    # -- the listener: note, never wait

    def _on_event(self, _event: ChannelEvent, state: ChannelState) -> None:
        self._track(state)

    def _track(self, state: ChannelState) -> None:
        channel_id = state.channel_id
        if state.phase in FINAL_PHASES:
            # Paid out: there is nothing left to defend.
            self._channels.pop(channel_id, None)
            self._clean(channel_id)
            return
        if state.phase not in _WATCHED_PHASES:
            return  # not on chain (yet)
        entry = self._channels.get(channel_id)
        if entry is None:
            entry = self._channels[channel_id] = _Channel(channel_id, state.terms, state.me)
        if state.received_total > entry.newest and state.received_signature is not None:
            entry.newest, entry.signature = state.received_total, state.received_signature
        if entry.dirty and channel_id not in self._dirty:
            self._dirty[channel_id] = None
            self._synced.clear()
            self._wake.set()

    def _clean(self, channel_id: bytes) -> None:
        self._dirty.pop(channel_id, None)
        if not self._dirty:
            self._synced.set()

    # -- the one background task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            now = loop.time()
            if now < self._resume_at:
                await self._sleep(self._resume_at - now, wake=False)
                continue
            due = [
                entry
                for channel_id in self._dirty
                if (entry := self._channels[channel_id]).retry_at <= now
            ]
            if not due:
                soonest = min((self._channels[c].retry_at for c in self._dirty), default=None)
                await self._sleep(None if soonest is None else soonest - now)
                continue
            step = self._config.concurrency
            for start in range(0, len(due), step):
                reached = await asyncio.gather(*(self._sync(e) for e in due[start : start + step]))
                if not all(reached):
                    self._outage(loop.time())
                    break
                if self._outage_failures:
                    log.info("the watcher is reachable again")
                    self._outage_failures = 0

    async def _sleep(self, seconds: float | None, *, wake: bool = True) -> None:
        """Until `seconds` have passed or (with `wake`) something changed."""
        if not wake:
            await asyncio.sleep(seconds or 0)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _outage(self, now: float) -> None:
        self._outage_failures += 1
        delay = self._backoff(self._outage_failures)
        self._resume_at = now + delay
        if self._outage_failures == 1:
            log.warning(
                "the watcher is unavailable; %d channels wait, retrying with backoff",
                len(self._dirty),
            )
        else:
            log.debug("the watcher is still unavailable; next try in %.1f s", delay)

    def _backoff(self, failures: int) -> float:
        doublings = min(failures - 1, 32)  # past the cap anyway; keeps the float finite
        return float(min(self._config.retry_base_s * 2**doublings, self._config.retry_max_s))

    def _refused(self, entry: _Channel, problem: str, *, longest: bool = False) -> None:
        """Leave a channel alone for a while after a refusal (`longest`: a setup error,
        which only a person can fix)."""
        entry.failures += 1
        entry.problem = problem
        delay = self._config.retry_max_s if longest else self._backoff(entry.failures)
        entry.retry_at = asyncio.get_running_loop().time() + delay

    async def _sync(self, entry: _Channel) -> bool:
        """Register and push one channel; False if the watcher could not be reached."""
        try:
            if entry.token is None:
                await self._register(entry)
            if entry.token is not None and entry.newest > entry.held:
                await self._push(entry)
        except WatchUnavailable as exc:
            self._unreachable += 1
            log.debug("watcher unavailable for 0x%s: %s", entry.channel_id.hex(), exc)
            return False
        except Exception:
            # A feed that dies leaves its node undefended: treat the unexpected like an
            # outage (logged, retried with backoff) rather than stop.
            self._unreachable += 1
            log.exception("feeding the watcher for 0x%s failed", entry.channel_id.hex())
            return False
        finally:
            if not entry.dirty or self._channels.get(entry.channel_id) is not entry:
                self._clean(entry.channel_id)
        return True

    async def _check_identity(self) -> TowerIdentity:
        if self._identity is None:
            identity = await self._tower.identity()
            chain = self._node.chain
            if (identity.chain_id, identity.hub) != (chain.chain_id, chain.hub):
                raise ContractError(
                    f"the watcher {identity.address} defends hub {identity.hub} on chain"
                    f" {identity.chain_id}; this node's channels are in hub {chain.hub} on"
                    f" chain {chain.chain_id}"
                )
            self._identity = identity
        return self._identity

    async def _register(self, entry: _Channel) -> None:
        try:
            identity = await self._check_identity()
        except ContractError as exc:
            log.error("not registering channel 0x%s: %s", entry.channel_id.hex(), exc)
            self._refused(entry, str(exc), longest=True)
            return
        now = int(self._clock())
        issued_at = min(max(now, entry.issued_floor), now + _MAX_AHEAD_S)
        terms = entry.terms
        digest = identity.registration_digest(entry.channel_id, entry.party, issued_at)
        registration = SignedRegistration(
            terms.a,
            terms.b,
            terms.asset,
            terms.challenge_period,
            terms.nonce,
            entry.party,
            issued_at,
            self._node.key.sign_digest(digest),
        )
        try:
            token = await self._tower.register(registration)
        except WatchRefused as exc:
            if exc.kind is WatchErrorKind.STALE and issued_at < now + _MAX_AHEAD_S:
                # The watcher holds a registration at least as new (we restarted within
                # its second, say): date the next one later, at once.
                entry.issued_floor = issued_at + entry.issue_step
                entry.issue_step *= 2
                return
            log.error(
                "the watcher refused to register channel 0x%s: %s", entry.channel_id.hex(), exc
            )
            self._refused(entry, str(exc), longest=True)
            return
        entry.token, entry.issued_floor, entry.issue_step = token, issued_at + 1, 1
        entry.held = 0  # what it holds under a new registration is learnt by pushing
        # `failures` is reset by a push that goes through, not here: two feeds taking
        # turns replacing each other's token back off instead of spinning.
        entry.problem = None
        log.debug(
            "registered channel 0x%s with watcher %s", entry.channel_id.hex(), identity.address
        )

    async def _push(self, entry: _Channel) -> None:
        total, signature, token = entry.newest, entry.signature, entry.token
        assert signature is not None  # newest > 0 comes with the peer's signature
        assert token is not None
        try:
            await self._tower.update(
                ProofUpdate(entry.channel_id, entry.party, token, total, signature)
            )
        except WatchRefused as exc:
            if exc.kind in (WatchErrorKind.UNAUTHORIZED, WatchErrorKind.UNKNOWN):
                # Replaced by a newer registration, or a watcher that lost it: register
                # again (after a pause, should two feeds for one party fight over it).
                log.info(
                    "the watcher no longer knows our token for 0x%s (%s): registering again",
                    entry.channel_id.hex(),
                    exc.code,
                )
                entry.token = None
                self._refused(entry, str(exc))
                return
            if exc.kind is WatchErrorKind.STALE:
                entry.failures, entry.problem = 0, None
            else:
                log.error(
                    "the watcher refused the proof of %d for 0x%s, dropped: %s",
                    total,
                    entry.channel_id.hex(),
                    exc,
                )
                entry.problem = str(exc)
        else:
            entry.failures, entry.problem = 0, None
        # Held, held already (stale: as new or newer), or never acceptable: done with it.
        entry.held = max(entry.held, total)
