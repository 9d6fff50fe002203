"""Stream heads anchored on chain in Merkle batches, and the proofs a reader checks.

`StreamAnchorer` is the `AnchorBatcher` of a `StreamStore`: it counts the messages
appended since the last batch and, once `batch_records` wait or the oldest has waited
`batch_interval_s`, puts every stream's newest head into one batch (up to `max_batch`
heads a batch, up to 64 batches a transaction), leaf `stream_leaf(stream, index, hash)`.

Heads only, not every message: a head's hash commits to all its stream's messages
before it, so one leaf a stream anchors everything it wrote since the last batch, and
the gas of a batch is divided by the messages it covers; a turbine writing once a second
into a batch a minute costs 1/60 of a leaf per message. The price is granularity: the
chain dates a message no more precisely than the batch of its next anchored head, and a
proof of a message that was not a head carries the messages between it and that head.
A message appended after the last head is unanchored until the next batch.

`prove(stream_id, index)` gives an `AnchorProof` from what the store keeps; see
`m2mpay.provenance.anchor_proof` for what it holds and `verify_anchor` for its checks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypeVar

from m2mpay.chain.anchor import MAX_BATCHES_PER_TX, AnchorBatch, TelemetryAnchor
from m2mpay.crypto import PrivateKey, merkle_proof, merkle_root
from m2mpay.errors import ProvenanceError
from m2mpay.provenance.anchor_proof import AnchorProof
from m2mpay.provenance.anchoring import STREAMS_SOURCE, AnchorBatcher, AnchorConfig
from m2mpay.provenance.records import StreamBatch
from m2mpay.provenance.stream_format import StreamMessage
from m2mpay.provenance.stream_store import MAX_READ, StreamStore
from m2mpay.provenance.streams import ProvenanceStream

__all__ = ["StreamAnchorer", "load_anchored"]

_T = TypeVar("_T")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _row(batch: StreamBatch) -> AnchorBatch:
    return AnchorBatch(STREAMS_SOURCE, batch.root, batch.id, batch.count)


class StreamAnchorer(AnchorBatcher[StreamBatch]):
    """See the module docstring. Without an anchor it proves nothing new; `start` it
    once the store is open."""

    what = "stream head"

    def __init__(
        self,
        store: StreamStore,
        *,
        anchor: TelemetryAnchor | None = None,
        signer: PrivateKey | None = None,
        config: AnchorConfig | None = None,
    ) -> None:
        super().__init__(anchor=anchor, signer=signer, config=config)
        self.store = store
        store.watch(self._stored)

    async def _count_waiting(self) -> int:
        return len(await self.store.unanchored_heads(self.config.batch_records))

    async def _anchor_waiting(self) -> list[StreamBatch]:
        assert self.anchor is not None
        anchored: list[StreamBatch] = []
        while heads := await self.store.unanchored_heads(
            min(MAX_READ, MAX_BATCHES_PER_TX * self.config.max_batch)
        ):
            from_block = await self.anchor.ledger.block_number()
            batches = [
                await self.store.record_batch(
                    merkle_root([h.leaf for h in chunk]), chunk, _now_ms(), from_block
                )
                for chunk in _chunks(heads, self.config.max_batch)
            ]
            anchored += await self._submit(batches)
        return anchored

    async def _anchor_recorded(self) -> list[StreamBatch]:
        missing = []
        done = []
        for batch in await self.store.unanchored_batches():
            receipt = await self._find(batch.from_block, STREAMS_SOURCE, batch.root, batch.tx_hash)
            if receipt is None:
                missing.append(batch)
                continue
            await self.store.mark_batch_anchored(
                batch.id, receipt.tx_hash, receipt.block_number, receipt.gas_used
            )
            done.append(await self._reread(batch))
        return done + await self._submit(missing)

    async def _submit(self, batches: Sequence[StreamBatch]) -> list[StreamBatch]:
        anchored = []
        for chunk in _chunks(batches, MAX_BATCHES_PER_TX):

            async def sent(tx_hash: bytes, chunk: Sequence[StreamBatch] = chunk) -> None:
                for batch in chunk:
                    await self.store.mark_batch_sent(batch.id, tx_hash)

            receipt = await self._send([_row(b) for b in chunk], sent)
            for batch in chunk:
                await self.store.mark_batch_anchored(
                    batch.id, receipt.tx_hash, receipt.block_number, receipt.gas_used
                )
                anchored.append(await self._reread(batch))
        return anchored

    async def _reread(self, batch: StreamBatch) -> StreamBatch:
        found = await self.store.stream_batch(batch.id)
        assert found is not None  # batches are never removed
        return found

    # -- proofs

    async def prove(self, stream_id: bytes, index: int) -> AnchorProof:
        """Message `index` of the stream with the proof of its earliest anchored head at
        or after it; `ProvenanceError("not_anchored")` if no such head is anchored yet."""
        if self.anchor is None or self.signer is None:
            raise ProvenanceError("not_anchored", "this node anchors no streams")
        anchored = [(b, at) for b, at in await self.store.anchors(stream_id, index) if b.anchored]
        if not anchored:
            raise ProvenanceError(
                "not_anchored", f"message {index} of 0x{stream_id.hex()} waits for its batch"
            )
        batch, at = anchored[0]
        head = batch.heads[at]
        messages: list[StreamMessage] = []
        while len(messages) < head.index - index + 1:
            page = await self.store.messages(
                stream_id, index + len(messages), head.index - index + 1 - len(messages)
            )
            if not page:
                raise ProvenanceError("not_anchored", "the store lacks the anchored messages")
            messages.extend(page)
        return AnchorProof(
            message=messages[0].raw,
            chain=tuple(m.raw for m in messages[1:]),
            batch=batch.id,
            position=at,
            count=batch.count,
            siblings=tuple(merkle_proof([h.leaf for h in batch.heads], at)),
            root=batch.root,
            anchor=self.anchor.address,
            chain_id=self.anchor.ledger.chain_id,
            submitter=self.signer.address,
            tx_hash=batch.tx_hash,
            block_number=batch.block_number,
        )

    async def head_proofs(self, stream_id: bytes) -> list[AnchorProof]:
        """The proofs of every anchored head of the stream, oldest first (what an export
        carries: with the file's messages they prove every message up to the last)."""
        if self.anchor is None:
            return []
        proofs = []
        for batch, at in await self.store.anchors(stream_id):
            if batch.anchored:
                proofs.append(await self.prove(stream_id, batch.heads[at].index))
        return proofs


async def load_anchored(
    store: StreamStore, anchorer: StreamAnchorer | None, stream_id: bytes
) -> tuple[ProvenanceStream, list[AnchorProof]]:
    """A stream as an export carries it: its messages and the proofs of its anchored
    heads. The proofs are read first and the messages after, so a message appended in
    between is one the file holds unanchored, never a proof of a head the file lacks
    (which a reader would rightly call forged)."""
    anchors = [] if anchorer is None else await anchorer.head_proofs(stream_id)
    return await ProvenanceStream.load(store, stream_id), anchors


def _chunks(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
