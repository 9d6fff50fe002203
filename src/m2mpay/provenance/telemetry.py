"""Telemetry: stored durably as it arrives, anchored on chain in batches, provable.

A device's records go to the `DeviceStore` before the bus acknowledges them. Once
`batch_records` records wait, or the oldest has waited `batch_interval_s`, the
batcher cuts every waiting record into one batch per device (at most `max_batch`
records each), records the batches with their Merkle roots (so a crash cannot
regroup them), and then anchors them: one `TelemetryAnchor` transaction for up to
64 batches. A batch recorded but not seen anchored is looked for on chain when the
batcher starts again, and submitted again only if it is not there.

`prove(device, seq)` gives a record with its Merkle path to an anchored root;
`TelemetryProof.verify()` checks the path offline and `verify_anchored()` checks
the root's event on chain.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Protocol

from m2mpay.chain.anchor import MAX_BATCHES_PER_TX, AnchorBatch, TelemetryAnchor
from m2mpay.crypto import (
    Address,
    PrivateKey,
    merkle_proof,
    merkle_root,
    verify_merkle_proof,
)
from m2mpay.errors import DeviceError
from m2mpay.provenance.anchoring import AnchorBatcher, AnchorConfig, check_anchored
from m2mpay.provenance.records import (
    BatchRecord,
    NewBatch,
    TelemetryRecord,
    TelemetryStore,
    canonical_json,
    telemetry_leaf,
)

__all__ = [
    "TelemetryBatcher",
    "TelemetryConfig",
    "TelemetryProof",
    "TelemetryReading",
    "verify_anchored",
]


class TelemetryReading(Protocol):
    """What a device reports: the bus's `TelemetryMessage`, as provenance reads it."""

    @property
    def seq(self) -> int: ...

    @property
    def at_ms(self) -> int: ...

    @property
    def data(self) -> Any: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


TelemetryConfig = AnchorConfig  # the name the node's settings know it by


@dataclass(frozen=True, slots=True)
class TelemetryProof:
    """A record, and the path from its leaf to the root of its anchored batch."""

    device: Address
    seq: int
    at_ms: int
    data: bytes  # canonical JSON
    batch: int
    index: int  # the leaf's position in the batch
    count: int
    first_seq: int
    siblings: tuple[bytes, ...]
    root: bytes
    anchor: Address | None
    chain_id: int | None
    tx_hash: bytes | None  # None until the batch is anchored
    block_number: int | None

    @property
    def leaf(self) -> bytes:
        return telemetry_leaf(self.device, self.seq, self.at_ms, self.data)

    def verify(self) -> bool:
        """Whether this record, as it reads here, is in the batch with `root`."""
        return verify_merkle_proof(self.leaf, self.index, self.count, self.siblings, self.root)

    def to_dict(self) -> dict[str, Any]:
        """For the API: hex bytes, integers, the record's data as JSON text."""
        return {
            "device": self.device.checksum,
            "seq": self.seq,
            "at_ms": self.at_ms,
            "data": self.data.decode(),
            "leaf": "0x" + self.leaf.hex(),
            "batch": self.batch,
            "index": self.index,
            "count": self.count,
            "first_seq": self.first_seq,
            "siblings": ["0x" + s.hex() for s in self.siblings],
            "root": "0x" + self.root.hex(),
            "anchor": self.anchor.checksum if self.anchor else None,
            "chain_id": self.chain_id,
            "tx_hash": "0x" + self.tx_hash.hex() if self.tx_hash else None,
            "block_number": self.block_number,
        }


async def verify_anchored(
    anchor: TelemetryAnchor, proof: TelemetryProof, submitter: Address
) -> bool:
    """Whether the proof holds and `submitter` anchored its root, for its device and
    count, at the block (and in the transaction) it names."""
    if proof.block_number is None or not proof.verify():
        return False
    problem, _ = await check_anchored(
        anchor,
        submitter=submitter,
        source=proof.device,
        root=proof.root,
        first_seq=proof.first_seq,
        count=proof.count,
        block_number=proof.block_number,
        tx_hash=proof.tx_hash,
    )
    return problem is None


class TelemetryBatcher(AnchorBatcher[BatchRecord]):
    """See the module docstring. Without an anchor it only stores and serves records."""

    what = "telemetry"

    def __init__(
        self,
        store: TelemetryStore,
        *,
        anchor: TelemetryAnchor | None = None,
        signer: PrivateKey | None = None,
        config: TelemetryConfig | None = None,
    ) -> None:
        super().__init__(anchor=anchor, signer=signer, config=config)
        self.store = store

    # ------------------------------------------------------------------ intake and reads

    async def add(self, device: Address, message: TelemetryReading, received_ms: int) -> bool:
        """Store one record durably; False if its seq was stored before (a re-send)."""
        record = TelemetryRecord(
            device, message.seq, message.at_ms, received_ms, canonical_json(message.data)
        )
        stored = await self.store.add_telemetry(record)
        if stored:
            self._stored()
        return stored

    async def records(
        self, device: Address, *, since_ms: int = 0, after_seq: int = 0, limit: int = 1000
    ) -> list[TelemetryRecord]:
        return await self.store.telemetry(
            device, since_ms=since_ms, after_seq=after_seq, limit=limit
        )

    async def last_seq(self, device: Address) -> int:
        return await self.store.last_telemetry_seq(device)

    async def prove(self, device: Address, seq: int) -> TelemetryProof:
        """The record `seq` of `device` with its path to its batch's root."""
        found = await self.store.telemetry(device, after_seq=seq - 1, limit=1)
        if not found or found[0].seq != seq:
            raise DeviceError("unknown_record", f"no telemetry record {seq} of {device}")
        record = found[0]
        batch = await self.store.batch(record.batch) if record.batch is not None else None
        if batch is None:
            raise DeviceError("not_batched", f"record {seq} of {device} waits for its batch")
        records = await self.store.batch_records(batch.id)
        index = next(i for i, r in enumerate(records) if r.seq == seq)
        return TelemetryProof(
            device,
            seq,
            record.at_ms,
            record.data,
            batch.id,
            index,
            batch.count,
            batch.first_seq,
            tuple(merkle_proof([r.leaf for r in records], index)),
            batch.root,
            self.anchor.address if self.anchor else None,
            self.anchor.ledger.chain_id if self.anchor else None,
            batch.tx_hash,
            batch.block_number,
        )

    # ------------------------------------------------------------------ anchoring

    async def _count_waiting(self) -> int:
        return len(await self.store.unbatched(self.config.batch_records))

    async def _anchor_waiting(self) -> list[BatchRecord]:
        assert self.anchor is not None
        anchored: list[BatchRecord] = []
        while True:
            limit = MAX_BATCHES_PER_TX * self.config.max_batch
            waiting = await self.store.unbatched(limit)
            if not waiting:
                return anchored
            from_block = await self.anchor.ledger.block_number()
            batches = await self.store.create_batches(self._cut(waiting, _now_ms(), from_block))
            anchored += await self._submit(batches)

    def _cut(
        self, records: Sequence[TelemetryRecord], now_ms: int, from_block: int
    ) -> list[NewBatch]:
        batches = []
        for device, group in groupby(records, key=lambda r: r.device):
            ordered = list(group)
            for start in range(0, len(ordered), self.config.max_batch):
                chunk = ordered[start : start + self.config.max_batch]
                root = merkle_root([r.leaf for r in chunk])
                batches.append(
                    NewBatch(device, root, tuple(r.seq for r in chunk), now_ms, from_block)
                )
        return batches

    async def _anchor_recorded(self) -> list[BatchRecord]:
        """Batches recorded before: mark those found on chain, submit the others."""
        assert self.anchor is not None
        assert self.signer is not None
        missing = []
        done = []
        for batch in await self.store.unanchored_batches():
            receipt = await self._find(batch.from_block, batch.device, batch.root)
            if receipt is not None:
                await self.store.mark_anchored(
                    [batch.id], receipt.tx_hash, receipt.block_number, receipt.gas_used
                )
                done.append(batch)
            else:
                missing.append(batch)
        return done + await self._submit(missing)

    async def _submit(self, batches: Sequence[BatchRecord]) -> list[BatchRecord]:
        anchored: list[BatchRecord] = []
        for start in range(0, len(batches), MAX_BATCHES_PER_TX):
            chunk = batches[start : start + MAX_BATCHES_PER_TX]
            receipt = await self._send(
                [AnchorBatch(b.device, b.root, b.first_seq, b.count) for b in chunk]
            )
            ids = [b.id for b in chunk]
            await self.store.mark_anchored(
                ids, receipt.tx_hash, receipt.block_number, receipt.gas_used
            )
            for batch_id in ids:
                batch = await self.store.batch(batch_id)
                if batch is not None:
                    anchored.append(batch)
        return anchored
