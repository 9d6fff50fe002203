# pragma version ~=0.4.3
# pragma optimize gas
"""
@title m2mpay TelemetryAnchor
@notice Anchors Merkle batches on the ledger: of device telemetry, and of the heads
        of provenance streams. A gateway collects a device's records, computes the
        Merkle root of their leaves off chain and anchors (device, root, first_seq,
        count) here; anyone holding a record and its Merkle path can then show that
        it was part of a batch the gateway committed to at a given block, and that
        nothing in the batch changed since. A node anchors stream heads the same way
        under a fixed `device` no key holds (m2mpay's STREAMS_SOURCE), with its batch
        number as `first_seq`; leaves of each kind are hashed under their own domain.
@dev    Nothing is stored: the commitment is the event log, which the block's
        receipts root already makes permanent and tamper-evident. Storing the root
        as well would cost a fresh storage slot (~22,100 gas) per batch for the
        benefit of on-chain readers only, and none needs it yet. The submitter is
        in the event, so a verifier trusts the gateways it chooses to trust.
"""

struct Batch:
    device: address
    root: bytes32
    first_seq: uint64
    count: uint64

event Anchored:
    submitter: indexed(address)
    device: indexed(address)
    root: indexed(bytes32)
    first_seq: uint64
    count: uint64

# Bounds the calldata and the loop of one transaction (about 4,000 gas a batch).
MAX_BATCHES: constant(uint256) = 64


@external
def anchor(device: address, root: bytes32, first_seq: uint64, count: uint64):
    """
    @notice Anchor one batch of `count` records of `device`, from `first_seq` on.
    """
    self._anchor(device, root, first_seq, count)


@external
def anchor_many(batches: DynArray[Batch, MAX_BATCHES]):
    """
    @notice Anchor several batches (of one device or many) in one transaction.
    """
    assert len(batches) != 0, "no batches"
    for batch: Batch in batches:
        self._anchor(batch.device, batch.root, batch.first_seq, batch.count)


@internal
def _anchor(device: address, root: bytes32, first_seq: uint64, count: uint64):
    assert device != empty(address), "no device"
    assert root != empty(bytes32), "empty root"
    assert count != 0, "empty batch"
    log Anchored(
        submitter=msg.sender, device=device, root=root, first_seq=first_seq, count=count
    )
