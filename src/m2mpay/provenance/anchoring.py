"""The one shape of anchoring, for telemetry records and provenance stream heads alike.

What waits is cut into batches, each a Merkle tree over leaves (`m2mpay.crypto.merkle`,
leaves from `m2mpay.provenance.records`); a batch is recorded durably with its root and
the chain's height before it is submitted (log, then act), so a crash can neither
regroup it nor lose it. On start, every batch recorded but not seen anchored is looked
for on chain from that height: marked if found, submitted again only if not. Up to
`MAX_BATCHES_PER_TX` batches share one `TelemetryAnchor` transaction. A kind whose store
keeps the transaction's hash once sent (stream batches do) is waited for by that hash
after a restart, so a transaction still pending then is not sent twice; only a crash in
the instant between sending and keeping the hash leaves a pending transaction unknown,
and the logs find it only once it is mined.

Anchoring runs once `batch_records` items wait or the oldest has waited
`batch_interval_s`; `flush()` anchors now. Subclasses say what waits, how it is cut and
where their batches are kept.

A batch of telemetry is anchored under its device's address; a batch of stream heads
under `STREAMS_SOURCE`, a fixed address no key holds, with the batch's id as
`first_seq`: the contract's event is the same, and a verifier asks for the source it
means. Leaves of each kind have their own domain, so no proof of one kind passes for
the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from m2mpay.chain.anchor import AnchorBatch, AnchoredBatch, TelemetryAnchor
from m2mpay.chain.ledger import BlockTag, Receipt
from m2mpay.crypto import Address, PrivateKey, keccak256
from m2mpay.errors import LedgerError, M2MPayError, ReceiptTimeout, TransactionReverted
from m2mpay.lifecycle import cancel_and_wait

__all__ = ["STREAMS_SOURCE", "AnchorBatcher", "AnchorConfig", "AnchorProblem", "check_anchored"]

log = logging.getLogger("m2mpay.provenance.anchoring")

# keccak256 of a domain: an address whose key nobody has, so no device is ever it.
STREAMS_SOURCE: Final = Address(keccak256(b"m2mpay/v1/stream-heads")[12:])
_RETRY_S: Final = 5.0  # after a failed anchor transaction

_B = TypeVar("_B")


class AnchorProblem(enum.StrEnum):
    """Why a proof of anchoring fails (`check_anchored`, `anchor_proof.verify_anchor`)."""

    FORGED_PROOF = "forged_proof"  # what is proved does not lead to the root, or the
    # chain anchors the root as another batch than the proof says
    NOT_ANCHORED = "not_anchored"  # no transaction named, or the root is nowhere on chain
    WRONG_ROOT = "wrong_root"  # the block anchors the submitter's other roots, not this
    WRONG_BLOCK = "wrong_block"  # the root is anchored, in another block or transaction
    WRONG_CHAIN = "wrong_chain"  # the proof names another chain or anchor contract
    UNTRUSTED_SUBMITTER = "untrusted_submitter"  # anchored by none the reader trusts


async def check_anchored(
    anchor: TelemetryAnchor,
    *,
    submitter: Address,
    source: Address,
    root: bytes,
    first_seq: int,
    count: int,
    block_number: int,
    tx_hash: bytes | None,
) -> tuple[AnchorProblem | None, str]:
    """Whether `submitter` anchored `root` for `source`, as batch (`first_seq`, `count`),
    in transaction `tx_hash` (any, if None) of block `block_number`: no problem, or the
    one that names best what the chain holds instead."""

    async def anchored(
        from_block: int, to_block: BlockTag, root: bytes | None
    ) -> list[AnchoredBatch]:
        return await anchor.batches(
            from_block, to_block, submitter=submitter, device=source, root=root
        )

    block = block_number
    if block > await anchor.ledger.block_number():
        return AnchorProblem.WRONG_BLOCK, f"block {block} is not on the chain yet"
    for found in await anchored(block, block, root):
        if tx_hash is not None and found.tx_hash != tx_hash:
            continue
        if (found.batch.first_seq, found.batch.count) != (first_seq, count):
            return AnchorProblem.FORGED_PROOF, (
                f"the chain anchors batch {found.batch.first_seq} of {found.batch.count}"
                f" leaves, the proof says {first_seq} of {count}"
            )
        return None, f"anchored in block {block}"
    elsewhere = await anchored(0, "latest", root)
    if elsewhere:
        where = elsewhere[0]
        return AnchorProblem.WRONG_BLOCK, (
            f"the root is anchored in block {where.block_number}, tx 0x{where.tx_hash.hex()}"
        )
    if await anchored(block, block, None):
        return AnchorProblem.WRONG_ROOT, f"block {block} anchors other roots"
    return AnchorProblem.NOT_ANCHORED, "the chain holds no anchor of this root"


@dataclass(frozen=True, slots=True)
class AnchorConfig:
    batch_records: int = 256  # anchor once this many items wait …
    batch_interval_s: float = 60.0  # … or once the oldest has waited this long
    max_batch: int = 4096  # leaves in one batch


class AnchorBatcher(ABC, Generic[_B]):
    """See the module docstring. Without an anchor it only keeps what it is given."""

    what = "items"  # for the log

    def __init__(
        self,
        *,
        anchor: TelemetryAnchor | None,
        signer: PrivateKey | None,
        config: AnchorConfig | None,
    ) -> None:
        if (anchor is None) != (signer is None):
            raise ValueError("anchoring needs both the anchor contract and a signing key")
        self.anchor = anchor
        self.signer = signer
        self.config = config or AnchorConfig()
        self._waiting = 0
        self._waiting_since = 0.0
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Resume: anchor what a crash left recorded but unanchored, then run (the store
        is open)."""
        self._waiting = await self._count_waiting()
        self._waiting_since = time.monotonic()
        if self.anchor is not None:
            try:
                async with self._lock:
                    await self._anchor_recorded()
            except LedgerError as exc:
                log.warning("anchoring recorded %s batches failed, retrying: %s", self.what, exc)
                self._waiting = max(self._waiting, 1)  # so that the loop tries again
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def flush(self) -> list[_B]:
        """Batch everything waiting and anchor it now; returns the batches anchored."""
        if self.anchor is None:
            return []
        async with self._lock:
            anchored = await self._anchor_recorded()
            anchored += await self._anchor_waiting()
            # What was stored while this ran waits for the next batch: count it again.
            self._waiting = await self._count_waiting()
            self._waiting_since = time.monotonic()
            return anchored

    def _stored(self, count: int = 1) -> None:
        """Note `count` new items waiting (they are durable already)."""
        if self._waiting == 0:
            self._waiting_since = time.monotonic()
        self._waiting += count
        if self._waiting >= self.config.batch_records or self._waiting == count:
            self._wakeup.set()  # batch now, or start the interval's clock

    # -- what a kind of batch provides

    @abstractmethod
    async def _count_waiting(self) -> int:
        """How many items wait, up to `batch_records`."""

    @abstractmethod
    async def _anchor_waiting(self) -> list[_B]:
        """Cut what waits into batches, record them, submit them (`_submit`)."""

    @abstractmethod
    async def _anchor_recorded(self) -> list[_B]:
        """Batches recorded before: mark those `_find` finds, submit the others."""

    # -- the chain

    async def _find(
        self, from_block: int, source: Address, root: bytes, tx_hash: bytes | None = None
    ) -> Receipt | None:
        """The receipt of this signer's anchor of `root` for `source`, if the chain has
        it: the transaction `tx_hash` sent before a crash once mined (waited for, since
        it may be pending still), else any found in the logs."""
        assert self.anchor is not None
        assert self.signer is not None
        if tx_hash is not None:
            with contextlib.suppress(ReceiptTimeout):  # dropped: then the logs tell
                receipt = await self.anchor.ledger.wait_for_receipt(tx_hash)
                if receipt.succeeded:
                    return receipt
        found = await self.anchor.batches(
            from_block, submitter=self.signer.address, device=source, root=root
        )
        if not found:
            return None
        return await self.anchor.ledger.wait_for_receipt(found[0].tx_hash)

    async def _send(
        self,
        rows: Sequence[AnchorBatch],
        sent: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> Receipt:
        """Anchor up to `MAX_BATCHES_PER_TX` rows in one transaction; `sent(tx_hash)`
        keeps its hash (durably) before its receipt is waited for."""
        assert self.anchor is not None
        assert self.signer is not None
        if sent is not None:
            tx_hash = await self.anchor.submit(self.signer, rows)
            await sent(tx_hash)
            receipt = await self.anchor.ledger.wait_for_receipt(tx_hash)
            if not receipt.succeeded:
                raise TransactionReverted("the anchor transaction reverted", tx_hash)
        elif len(rows) == 1:
            receipt = await self.anchor.anchor(self.signer, rows[0])
        else:
            receipt = await self.anchor.anchor_many(self.signer, rows)
        log.info(
            "anchored %d %s batches in block %d (%d gas)",
            len(rows),
            self.what,
            receipt.block_number,
            receipt.gas_used,
        )
        return receipt

    async def _run(self) -> None:
        while True:
            if self._waiting == 0:
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            due = self._waiting_since + self.config.batch_interval_s - time.monotonic()
            if self._waiting >= self.config.batch_records or due <= 0:
                try:
                    await self.flush()
                except M2MPayError as exc:  # the chain or the store: try again later
                    log.warning("anchoring %s failed, retrying: %s", self.what, exc)
                    await asyncio.sleep(_RETRY_S)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(due):
                    await self._wakeup.wait()
            self._wakeup.clear()
