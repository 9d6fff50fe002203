"""The watcher's chain duty: follow the hub, back-fill new channels, plan and act.

Three loops and one dispatcher, all on the event loop:

- the follower reads hub logs from the durable cursor to the head (catching up what
  happened while the watcher was down), folds events of watched channels into their
  views, commits views and cursor together, then plans for what changed. Each poll it
  first checks that the blocks it read are still in the chain (`ForkWatch`): after a
  reorganisation, the views of the channels it touched are read again and our dropped
  transactions sent again, so a dropped close or challenge is answered anew;
- the back-fill reads the past events of newly registered channels with a topic filter
  on their indexed ids (many channels per request), so a channel registered after it
  was opened, or even closed, is known at once;
- the ticker re-plans closing channels, because a deadline passing is not an event;
- `_perform` is the one place that submits transactions. It logs the intent durably,
  submits, logs the outcome, and plans again: each action changes the stored channel
  state, so a channel has at most one action in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from m2mpay.chain.events import ChannelSettled, HubEvent, decode_hub_event
from m2mpay.chain.hub import ChannelHub
from m2mpay.chain.ledger import Ledger, LogEntry, Receipt
from m2mpay.crypto import PrivateKey
from m2mpay.errors import StoreError, TransactionReverted
from m2mpay.lifecycle import cancel_all, run_in_background
from m2mpay.watcher.core import (
    ChainTime,
    ChainView,
    Challenge,
    Phase,
    Settle,
    apply_event,
    plan,
)
from m2mpay.watcher.journal import Journal
from m2mpay.watcher.rewinds import ForkWatch
from m2mpay.watcher.state import Dispute, Watched, WatcherState

__all__ = ["ChainDuty", "DutyConfig"]

log = logging.getLogger("m2mpay.watcher")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class DutyConfig:
    """How the watcher follows the chain; the defaults suit a node on loopback."""

    start_block: int = 0  # where a new watcher starts reading, and back-fills read from
    poll_interval_s: float = 0.05  # how often the head is read; a block costs one log read
    tick_interval_s: float = 0.25
    backfill_batch: int = 1_000  # channel ids per topic-filtered log request
    backfill_delay_s: float = 0.05  # gather registrations arriving together into one read
    max_log_range: int = 10_000  # blocks per log request
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    action_timeout_s: float = 120.0


class ChainDuty:
    """Keeps the views of watched channels current and defends them."""

    def __init__(
        self,
        ledger: Ledger,
        hub: ChannelHub,
        key: PrivateKey,
        state: WatcherState,
        journal: Journal,
        config: DutyConfig,
    ) -> None:
        self._ledger = ledger
        self._hub = hub
        self._key = key
        self._state = state
        self._journal = journal
        self._config = config
        self._closing: set[bytes] = set()
        self._backfill: dict[bytes, None] = {}  # ordered set of channels to back-fill
        self._backfill_wanted = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._actions: set[asyncio.Task[None]] = set()
        self._head = -1
        self._head_time: tuple[int, float] | None = None  # (timestamp, monotonic when read)
        self._warned_behind = False
        self._forks = ForkWatch(ledger, hub.address, journal.cursor + 1, journal.anchors)
        self.caught_up = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        for watched in self._state.channels.values():
            if not watched.backfilled:
                self.want_backfill(watched)
            if watched.view.phase is Phase.CLOSING:
                self._closing.add(watched.params.id)
        for loop in (self._follow(), self._backfill_loop(), self._tick()):
            self._spawn(loop, self._tasks)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop reading; give transactions in flight `grace_s` to report their outcome."""
        await cancel_all(self._tasks)
        if self._actions:
            _, late = await asyncio.wait(self._actions, timeout=grace_s)
            await cancel_all(late)

    def _spawn(self, coro: Coroutine[Any, Any, None], into: set[asyncio.Task[None]]) -> None:
        run_in_background(into, coro)

    # -- the chain clock ---------------------------------------------------------------

    def chain_time(self) -> ChainTime:
        """What the next block's timestamp will be at least, and likely is.

        Dev chains mine only when a transaction comes, so the newest block may be old:
        the likely time is that block's time plus what elapsed since it was read, and
        never less than the wall clock (dev chains only move their clocks forward).
        """
        wall = int(time.time())
        if self._head_time is None:
            return ChainTime(latest_block=0, estimate=wall)
        stamp, read_at = self._head_time
        return ChainTime(stamp, max(stamp + int(time.monotonic() - read_at), wall))

    async def _read_clock(self, head: int) -> None:
        self._head_time = (await self._ledger.block_timestamp(head), time.monotonic())

    # -- following -------------------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            try:
                head = await self._ledger.block_number()
                if head < self._journal.cursor and not self._warned_behind:
                    self._warned_behind = True
                    log.warning(
                        "the chain's head %d is behind the watcher's cursor %d: was the chain"
                        " reset, or is this another chain? waiting for block %d",
                        head,
                        self._journal.cursor,
                        self._journal.cursor + 1,
                    )
                touched: set[Watched] = set()
                fork = await self._forks.fork_point()
                if fork is not None:
                    channels = self._forks.rewind(fork, self._state.channels.keys())
                    touched |= await self._rewind(fork, channels)
                await self._forks.saw_head(head)
                while self._journal.cursor < head:
                    start = self._journal.cursor + 1
                    end = min(head, start + self._config.max_log_range - 1)
                    logs = await self._ledger.get_logs(
                        address=self._hub.address, from_block=start, to_block=end
                    )
                    self._forks.read(logs)
                    touched |= self._fold(logs)
                    self._journal.set_cursor(end)
                overdue = self._forks.overdue(self._journal.cursor)
                if overdue:
                    touched |= await self._rewind(min(overdue.values()) - 1, set(overdue))
                await self._journal.flush()
                if head != self._head:
                    self._head = head
                    if self._closing or self._head_time is None:
                        await self._read_clock(head)
                for watched in touched:
                    self.replan(watched)
                self.caught_up.set()
            except asyncio.CancelledError:
                raise
            except StoreError as exc:
                log.error("the store failed, nothing can be made durable; restart: %s", exc)
                await asyncio.sleep(self._config.retry_max_s)
            except Exception as exc:
                log.warning("following the chain failed, retrying: %s", exc)
                await asyncio.sleep(self._config.retry_base_s)
            await asyncio.sleep(self._config.poll_interval_s)

    async def _rewind(self, fork: int, channels: set[bytes]) -> set[Watched]:
        """The blocks after `fork` were replaced: what we sent there goes again, and the
        views of `channels` are read afresh from the chain; the cursor goes back."""
        log.warning("reorganisation: the blocks after %d were replaced", fork)
        await self._ledger.resend_dropped(max(fork, 0))
        touched: set[Watched] = set()
        seen_at = _now_ms()
        for channel in channels:
            watched = self._state.channels.get(channel)
            if watched is None:
                continue
            view = await self._forks.view_of(channel, self._config.start_block)
            if view != watched.view:
                self._set_view(watched, view, seen_at)
                touched.add(watched)
        self._journal.rewind_cursor(max(fork, self._config.start_block - 1))
        return touched

    def _fold(self, logs: Iterable[LogEntry]) -> set[Watched]:
        """Fold hub logs into the views of watched channels; return those that changed."""
        seen_at = _now_ms()
        touched: set[Watched] = set()
        channels = self._state.channels
        for entry in logs:
            # Topic 1 of every channel event is its id: skip others without decoding.
            if len(entry.topics) < 2 or entry.topics[1] not in channels:
                continue
            event = decode_hub_event(entry)
            if event is not None and self._fold_event(event, seen_at):
                touched.add(channels[entry.topics[1]])
        return touched

    def _fold_event(self, event: HubEvent, seen_at: int) -> bool:
        watched = self._state.channels.get(getattr(event, "channel_id", b""))
        if watched is None:
            return False
        view = apply_event(watched.view, event)
        if view is watched.view:
            return False
        self._set_view(watched, view, seen_at)
        return True

    def _set_view(self, watched: Watched, view: ChainView, seen_at: int) -> None:
        self._journal.append(self._state.set_view(watched, view, seen_at))
        if view.phase is Phase.CLOSING:
            self._closing.add(watched.params.id)
        else:
            self._closing.discard(watched.params.id)

    # -- back-fill -------------------------------------------------------------------

    def want_backfill(self, watched: Watched) -> None:
        self._backfill[watched.params.id] = None
        self._backfill_wanted.set()

    async def _backfill_loop(self) -> None:
        while True:
            await self._backfill_wanted.wait()
            # Registrations come in bursts (a device fleet, a hub restart): one log read
            # for many channels costs about what one for a single channel does.
            await asyncio.sleep(self._config.backfill_delay_s)
            self._backfill_wanted.clear()
            while self._backfill:
                batch = list(self._backfill)[: self._config.backfill_batch]
                try:
                    touched = await self._backfill_batch(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("back-filling %d channels failed, retrying: %s", len(batch), exc)
                    await asyncio.sleep(self._config.retry_base_s)
                    continue
                for channel in batch:
                    self._backfill.pop(channel, None)
                for watched in touched:
                    self.replan(watched)

    async def _backfill_batch(self, batch: list[bytes]) -> set[Watched]:
        head = await self._ledger.block_number()
        touched: set[Watched] = set()
        start = self._config.start_block
        while start <= head:
            end = min(head, start + self._config.max_log_range - 1)
            logs = await self._ledger.get_logs(
                address=self._hub.address, from_block=start, to_block=end, topics=[None, batch]
            )
            touched |= self._fold(logs)
            start = end + 1
        channels = [self._state.channels[c] for c in batch]
        self._journal.append(self._state.mark_backfilled(channels))
        await self._journal.flush()
        if self._closing:
            await self._read_clock(head)
        return touched

    # -- planning and acting -----------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._config.tick_interval_s)
            for channel in list(self._closing):
                self.replan(self._state.channels[channel])
            try:
                await self._journal.maybe_snapshot(self._state)
            except Exception as exc:
                log.error("snapshot failed: %s", exc)

    def replan(self, watched: Watched) -> None:
        """Start the action the channel needs now, unless one is in flight or backing off."""
        if watched.in_flight or time.monotonic() < watched.retry_at:
            return
        action = plan(watched.params, watched.view, watched.held(), self.chain_time())
        if action is None:
            return
        watched.in_flight = True
        self._spawn(self._perform(watched, action), self._actions)

    async def _perform(self, watched: Watched, action: Challenge | Settle) -> None:
        dispute = self._intent(watched, action)
        try:
            self._journal.append(self._state.put_dispute(dispute))
            await self._journal.flush()
            async with asyncio.timeout(self._config.action_timeout_s):
                receipt = await self._submit(action)
        except asyncio.CancelledError:
            watched.in_flight = False
            raise
        except Exception as exc:
            reason = exc.reason if isinstance(exc, TransactionReverted) else str(exc) or repr(exc)
            dispute.status, dispute.reason = "failed", reason
            watched.failures += 1
            backoff = self._config.retry_base_s * 2 ** (watched.failures - 1)
            watched.retry_at = time.monotonic() + min(backoff, self._config.retry_max_s)
            log.warning("%s of 0x%s failed: %s", dispute.kind, watched.params.id.hex(), reason)
        else:
            self._mined(watched, dispute, receipt)
        try:
            self._journal.append(self._state.put_dispute(dispute))
            await self._journal.flush()
        except Exception as exc:
            log.error("cannot record the outcome of %s %d: %s", dispute.kind, dispute.id, exc)
        watched.in_flight = False
        self.replan(watched)

    def _intent(self, watched: Watched, action: Challenge | Settle) -> Dispute:
        dispute = Dispute(
            id=self._state.next_dispute_id,
            kind="challenge" if isinstance(action, Challenge) else "settle",
            channel_id=watched.params.id,
            status="submitted",
            submitted_at_ms=_now_ms(),
            close_block=watched.view.close_block,
            close_seen_at_ms=watched.close_seen_at_ms,
        )
        if isinstance(action, Challenge):
            dispute.participant = action.participant
            dispute.beneficiary = action.beneficiary
            dispute.transferred = action.transferred
            dispute.replaced = action.replaced
        return dispute

    async def _submit(self, action: Challenge | Settle) -> Receipt:
        if isinstance(action, Challenge):
            return await self._hub.challenge(
                self._key,
                action.channel,
                action.closing,
                action.participant,
                action.transferred,
                action.signature,
            )
        return await self._hub.settle(self._key, action.channel, action.closing)

    def _mined(self, watched: Watched, dispute: Dispute, receipt: Receipt) -> None:
        dispute.status = "mined"
        dispute.tx_hash, dispute.block = receipt.tx_hash, receipt.block_number
        dispute.mined_at_ms = _now_ms()
        watched.failures = 0
        # Until the follower reads them too, a reorganisation may take them back unseen.
        self._forks.mined(receipt.tx_hash, watched.params.id, receipt.block_number)
        # Fold the receipt's own events now, so the next plan starts from them.
        for entry in receipt.logs:
            event = decode_hub_event(entry)
            if event is None:
                continue
            if isinstance(event, ChannelSettled):
                dispute.balance_a, dispute.balance_b = event.balance_a, event.balance_b
            self._fold_event(event, dispute.mined_at_ms)
        if dispute.kind == "challenge":
            log.info(
                "challenged 0x%s: %s's total %d -> %d for %s; tx 0x%s in block %d, %s ms after"
                " the close was seen",
                watched.params.id.hex(),
                dispute.participant,
                dispute.replaced,
                dispute.transferred,
                dispute.beneficiary,
                receipt.tx_hash.hex(),
                receipt.block_number,
                dispute.latency_ms,
            )
        else:
            log.info(
                "settled 0x%s: a gets %s, b gets %s; tx 0x%s in block %d",
                watched.params.id.hex(),
                dispute.balance_a,
                dispute.balance_b,
                receipt.tx_hash.hex(),
                receipt.block_number,
            )

    def closing_count(self) -> int:
        return len(self._closing)
