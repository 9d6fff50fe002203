"""`TransferSales`: the node's follower of transfers to its devices, and what it does
with each (the rules: `m2mpay.market.transfer_sales`).

Every poll it reads the `Transfer` logs of the tokens sold by transfer, to the devices'
addresses, up to the newest block where a transfer has the confirmations its terms ask
for; nothing newer is read, so a reorganisation that drops a transfer not yet confirmed
never has it counted. The transfers found are recorded with the cursor that passes
them in one transaction (`TransferSaleStore.record`), keyed by transaction and position
within it, then each purchase is delivered (log, then act): the device is commanded
through its `Supply` (on the bus, a `DeviceSupply` whose session id is the purchase's),
permitted the units bought, and stopped once it reports them delivered. The bus keeps
the commands and sends them again until the device acknowledges them.

The cursor is stored with block hashes that vouch for it (`chain.anchors`): after a
restart it resumes where it was, and a reorganisation deeper than the confirmations is
noticed and read again from the fork, which counts only transfers not counted before.
Purchases not yet delivered when the node stopped are commanded again at start (the
targets are absolute, so a repeat is harmless), and the device goes on lighting what
was paid while the node is away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from m2mpay.chain.anchors import Anchors, parse_cursor
from m2mpay.chain.ledger import Ledger, LogEntry
from m2mpay.crypto import Address, keccak256
from m2mpay.errors import LedgerError, M2MPayError, StoreError
from m2mpay.lifecycle import Startable, cancel_all, cancel_and_wait, run_in_background
from m2mpay.market.transfer_sales import (
    TransferPurchase,
    TransferTerms,
    purchase_id,
    terms_problem,
)
from m2mpay.market.transfer_store import SeenTransfer, TransferSaleStore
from m2mpay.stream.supply import Supply

__all__ = ["TRANSFER_TOPIC", "SupplyFor", "TransferSales", "decode_transfer"]

log = logging.getLogger("m2mpay.market.transfers")

TRANSFER_TOPIC: Final = keccak256(b"Transfer(address,address,uint256)")
_MAX_BLOCKS: Final = 2_000  # blocks read a poll: a long catch-up goes in steps
_RETRY_MAX_S: Final = 5.0

# The device's service as the supply of one purchase (its id is the session's).
SupplyFor = Callable[[Address, str, bytes], Supply]


def decode_transfer(entry: LogEntry) -> tuple[Address, Address, int] | None:
    """An ERC-20 `Transfer` log's sender, receiver and amount (None: not one)."""
    topics = entry.topics
    if len(topics) != 3 or topics[0] != TRANSFER_TOPIC or len(entry.data) != 32:
        return None
    if any(len(topic) != 32 or any(topic[:12]) for topic in topics[1:]):
        return None
    return Address(topics[1][12:]), Address(topics[2][12:]), int.from_bytes(entry.data)


class TransferSales(Startable):
    """See the module docstring. With `follow` off nothing polls by itself: `poll_once`
    is the whole step (as the tests drive it)."""

    def __init__(
        self,
        ledger: Ledger,
        store: TransferSaleStore,
        supply_for: SupplyFor,
        *,
        poll_s: float = 0.5,
        follow: bool = True,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._supply_for = supply_for
        self._poll_s = poll_s
        self._follow = follow
        self._terms: dict[tuple[Address, Address], TransferTerms] = {}
        self._anchors = Anchors()
        self._cursor = -1
        self._lock = asyncio.Lock()
        self._supplies: dict[bytes, Supply] = {}
        self._delivered: dict[bytes, int] = {}
        self._waiting: dict[bytes, TransferPurchase] = {}  # their device is not on the bus
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    @property
    def cursor(self) -> int:
        """The newest block whose confirmed transfers are all recorded."""
        return self._cursor

    async def start(self) -> None:
        await self._store.open()
        self._terms = {(t.device, t.token): t for t in await self._store.terms()}
        stored = await self._store.cursor()
        if stored is None:
            self._cursor = await self._ledger.block_number()
        else:
            self._cursor, anchors = parse_cursor(stored)
            self._anchors = Anchors(anchors)
        for purchase in await self._store.purchases(undone=True):
            self._deliver(purchase)
        if self._follow:
            self._loop = asyncio.create_task(self._run(), name="transfer sales")

    async def stop(self) -> None:
        """Stop following; the devices keep delivering what was paid (see the module
        docstring), and are commanded again at the next start."""
        await cancel_and_wait(self._loop)
        self._loop = None
        await cancel_all(self._tasks)
        self._supplies.clear()
        await self._store.close()

    # ------------------------------------------------------------------ terms

    async def enable(self, terms: TransferTerms) -> TransferTerms:
        """Sell under `terms` the transfers mined from the next block on (`from_block`
        is set here); raises `ValueError` with the problem of terms that cannot be."""
        problem = terms_problem(terms)
        if problem is not None:
            raise ValueError(problem)
        enabled = replace(terms, from_block=await self._ledger.block_number() + 1)
        await self._store.save_terms(enabled)
        self._terms = {k: t for k, t in self._terms.items() if t.offer_id != terms.offer_id}
        self._terms[(enabled.device, enabled.token)] = enabled
        return enabled

    async def disable(self, offer_id: bytes) -> None:
        """Count no more transfers for the offer (withdrawn); those counted are kept and
        still delivered."""
        await self._store.remove_terms(offer_id)
        self._terms = {k: t for k, t in self._terms.items() if t.offer_id != offer_id}

    def terms(self) -> list[TransferTerms]:
        return list(self._terms.values())

    async def purchases(self) -> list[TransferPurchase]:
        """Every transfer counted, oldest first, with what its device delivered so far."""
        found = await self._store.purchases()
        return [
            replace(p, delivered=max(p.delivered, self._delivered.get(p.purchase_id, 0)))
            for p in found
        ]

    # ------------------------------------------------------------------ following

    async def _run(self) -> None:
        delay = self._poll_s
        while True:
            try:
                await self.poll_once()
                delay = self._poll_s
            except (LedgerError, StoreError) as exc:
                # The chain's node or the disk is away: read again from the cursor.
                log.warning("transfer sales: following again in %.1f s: %s", delay, exc)
                delay = min(2 * delay, _RETRY_MAX_S)
            await asyncio.sleep(delay)

    async def poll_once(self) -> list[TransferPurchase]:
        """Read the confirmed transfers past the cursor, record them, deliver the new
        purchases; returns them."""
        async with self._lock:
            return await self._poll()

    async def _poll(self) -> list[TransferPurchase]:
        ledger = self._ledger
        if ledger.may_reorganise:
            fork = await self._anchors.fork_point(ledger.block_hash)
            if fork is not None and fork < self._cursor:
                log.warning("blocks this node had read were replaced: reading from %d", fork + 1)
                self._cursor = fork
        head = await ledger.block_number()
        terms = list(self._terms.values())
        through, seen = head, []
        if terms:
            shallowest = min(t.confirmations for t in terms)
            deepest = max(t.confirmations for t in terms)
            last = min(head - shallowest + 1, self._cursor + _MAX_BLOCKS)
            seen = await self._confirmed(terms, self._cursor + 1, last, head)
            # Past the cursor only what every terms' transfers confirmed; those read
            # again meanwhile are recorded already and count nothing twice.
            through = max(self._cursor, min(last, head - deepest + 1))
        if ledger.may_reorganise and through >= 0:
            block_hash = await ledger.block_hash(through)
            if block_hash is not None:
                self._anchors.saw(through, block_hash)
        new = await self._store.record(seen, self._anchors.record(through))
        self._cursor = through
        for purchase in [*new, *self._waiting.values()]:
            if not purchase.done:
                self._deliver(purchase)
        return new

    async def _confirmed(
        self, terms: Sequence[TransferTerms], first: int, last: int, head: int
    ) -> list[SeenTransfer]:
        if last < first:
            return []
        entries = await self._ledger.get_logs(
            address=sorted({t.token for t in terms}),
            from_block=first,
            to_block=last,
            topics=[TRANSFER_TOPIC, None, [bytes(12) + bytes(t.device) for t in terms]],
        )
        seen = []
        for entry in entries:
            transfer = decode_transfer(entry)
            if transfer is None:
                continue
            sender, receiver, amount = transfer
            found = self._terms.get((receiver, entry.address))
            if found is None or amount == 0 or entry.block_number < found.from_block:
                continue
            if entry.block_number > head - found.confirmations + 1:
                continue  # not confirmed yet for its terms: read again later
            position = await self._position(entry)
            key = purchase_id(self._ledger.chain_id, entry.address, entry.tx_hash, position)
            seen.append(
                SeenTransfer(
                    key, found, entry.tx_hash, position, entry.block_number, sender, amount
                )
            )
        return seen

    async def _position(self, entry: LogEntry) -> int:
        """The log's position within its transaction, which no other block changes."""
        receipt = await self._ledger.wait_for_receipt(entry.tx_hash, timeout=10)
        indices = [found.log_index for found in receipt.logs]
        if receipt.block_number != entry.block_number or entry.log_index not in indices:
            raise LedgerError("the chain moved while its transfers were read")
        return indices.index(entry.log_index)

    # ------------------------------------------------------------------ delivery

    async def drain(self) -> None:
        """Wait until the deliveries begun so far have commanded their devices (and
        those whose devices reported every unit are recorded as done)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def _deliver(self, purchase: TransferPurchase) -> None:
        if purchase.purchase_id in self._supplies or purchase.sale.units == 0:
            return
        try:
            supply = self._supply_for(purchase.device, purchase.service, purchase.purchase_id)
        except M2MPayError as exc:
            if purchase.purchase_id not in self._waiting:
                log.warning("transfer purchase waits for its device: %s", exc)
            self._waiting[purchase.purchase_id] = purchase
            return
        self._waiting.pop(purchase.purchase_id, None)
        self._supplies[purchase.purchase_id] = supply
        run_in_background(self._tasks, self._supply(purchase, supply), _delivery_failed)

    async def _supply(self, purchase: TransferPurchase, supply: Supply) -> None:
        key, units = purchase.purchase_id, purchase.sale.units

        def report(delivered: int) -> None:
            self._delivered[key] = delivered
            if delivered >= units:
                run_in_background(self._tasks, self._finish(key, supply), _delivery_failed)

        await supply.start(report, purchase.delivered)
        supply.permit(units)

    async def _finish(self, key: bytes, supply: Supply) -> None:
        if self._supplies.pop(key, None) is None:
            return
        await supply.stop()
        await self._store.delivered(key, self._delivered.get(key, 0), done=True)


def _delivery_failed(exc: BaseException) -> None:
    log.error("delivering a transfer purchase failed: %r", exc)
