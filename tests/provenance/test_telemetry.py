"""Telemetry batching and anchoring on every real ledger: records stored durably, cut
into one batch per device, anchored in one transaction, proved offline and on chain;
after a crash, nothing is regrouped and nothing anchored twice."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from m2mpay.bus.messages import TelemetryMessage
from m2mpay.bus.sqlite import SqliteDeviceStore
from m2mpay.chain import AnchorBatch, Ledger, TelemetryAnchor, deploy_anchor
from m2mpay.crypto import Address, PrivateKey, merkle_root
from m2mpay.errors import DeviceError
from m2mpay.provenance.records import NewBatch
from m2mpay.provenance.telemetry import TelemetryBatcher, TelemetryConfig, verify_anchored
from tests.waiting import eventually_async

LAMP = Address(bytes([1]) * 20)
METER = Address(bytes([2]) * 20)


def _message(seq: int, value: float) -> TelemetryMessage:
    return TelemetryMessage(seq=seq, at_ms=1_700_000_000_000 + seq, data={"w": value, "ok": True})


@pytest.fixture
async def anchor(ledger: Ledger) -> TelemetryAnchor:
    contract, _ = await deploy_anchor(ledger, ledger.dev_accounts()[0])
    return contract


@pytest.fixture
def gateway_key(ledger: Ledger) -> PrivateKey:
    return ledger.dev_accounts()[1]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteDeviceStore]:
    async with SqliteDeviceStore(tmp_path / "devices.sqlite3") as opened:
        yield opened


async def _batcher(
    store: SqliteDeviceStore,
    anchor: TelemetryAnchor,
    key: PrivateKey,
    **config: float,
) -> TelemetryBatcher:
    settings = TelemetryConfig(**config)  # type: ignore[arg-type]
    batcher = TelemetryBatcher(store, anchor=anchor, signer=key, config=settings)
    await batcher.start()
    return batcher


async def test_batches_per_device_are_anchored_and_every_record_proved(
    store: SqliteDeviceStore, anchor: TelemetryAnchor, gateway_key: PrivateKey
) -> None:
    batcher = await _batcher(store, anchor, gateway_key, batch_interval_s=3600)
    for seq in range(1, 8):
        assert await batcher.add(LAMP, _message(seq, 7.5 * seq), 1)
    for seq in range(1, 4):
        assert await batcher.add(METER, _message(seq, seq), 1)
    assert not await batcher.add(LAMP, _message(7, 0), 1)  # a re-send is not a new record
    with pytest.raises(DeviceError, match="not_batched"):
        await batcher.prove(LAMP, 1)
    lamp_batch, meter_batch = await batcher.flush()
    await batcher.stop()
    assert (lamp_batch.device, lamp_batch.first_seq, lamp_batch.count) == (LAMP, 1, 7)
    assert (meter_batch.device, meter_batch.count) == (METER, 3)
    assert lamp_batch.tx_hash == meter_batch.tx_hash  # one transaction for both
    assert lamp_batch.gas_used is not None
    assert lamp_batch.gas_used < 35_000  # two batches, one transaction
    (on_chain,) = await anchor.batches(0, device=LAMP)
    assert on_chain.batch.root == lamp_batch.root
    assert on_chain.submitter == gateway_key.address
    for device, count in ((LAMP, 7), (METER, 3)):
        for seq in range(1, count + 1):
            proof = await batcher.prove(device, seq)
            assert proof.verify()
            assert await verify_anchored(anchor, proof, gateway_key.address)
    proof = await batcher.prove(LAMP, 5)
    assert proof.to_dict()["data"] == '{"ok":true,"w":37.5}'
    assert proof.chain_id == anchor.ledger.chain_id
    # A record edited after the fact, or claimed by another gateway, proves nothing.
    edited = dataclasses.replace(proof, data=b'{"ok":true,"w":99.0}')
    assert not edited.verify()
    assert not await verify_anchored(anchor, edited, gateway_key.address)
    assert not await verify_anchored(anchor, proof, LAMP)
    moved = dataclasses.replace(proof, index=proof.index + 1)
    assert not moved.verify()
    with pytest.raises(DeviceError, match="unknown_record"):
        await batcher.prove(LAMP, 8)
    assert await batcher.flush() == []  # nothing waits


async def test_a_full_batch_is_anchored_without_being_asked(
    store: SqliteDeviceStore, anchor: TelemetryAnchor, gateway_key: PrivateKey
) -> None:
    batcher = await _batcher(store, anchor, gateway_key, batch_records=5, batch_interval_s=3600)
    try:
        for seq in range(1, 6):
            await batcher.add(LAMP, _message(seq, 1.0), 1)

        async def anchored() -> bool:
            # On chain, and marked so in the store: the chain holds the batch a moment
            # before the batcher has read its receipt.
            on_chain = bool(await anchor.batches(0, device=LAMP))
            return on_chain and not await store.unanchored_batches()

        await eventually_async(anchored)
        assert len(await anchor.batches(0, device=LAMP)) == 1
        proof = await batcher.prove(LAMP, 3)
        assert proof.count == 5
        assert proof.block_number is not None
    finally:
        await batcher.stop()


async def test_a_batch_waits_no_longer_than_the_interval(
    store: SqliteDeviceStore, anchor: TelemetryAnchor, gateway_key: PrivateKey
) -> None:
    batcher = await _batcher(store, anchor, gateway_key, batch_records=1000, batch_interval_s=0.1)
    try:
        await batcher.add(METER, _message(1, 1.0), 1)
        await batcher.add(METER, _message(2, 2.0), 1)

        async def anchored() -> bool:
            return not await store.unbatched(10) and not await store.unanchored_batches()

        await eventually_async(anchored)
        proof = await batcher.prove(METER, 2)
        assert proof.count == 2
        assert await verify_anchored(anchor, proof, gateway_key.address)
    finally:
        await batcher.stop()


async def test_after_a_crash_recorded_batches_are_anchored_once(
    store: SqliteDeviceStore, anchor: TelemetryAnchor, gateway_key: PrivateKey
) -> None:
    # Before the crash: records stored, two batches recorded; one of them reached the
    # chain but the process died before noting it, the other was never sent.
    writer = TelemetryBatcher(store)
    for seq in (1, 2, 3):
        await writer.add(LAMP, _message(seq, 1.0), 1)
        await writer.add(METER, _message(seq, 2.0), 1)
    records = await store.unbatched(10)
    height = await anchor.ledger.block_number()
    batches = []
    for device in (LAMP, METER):
        mine = [r for r in records if r.device == device]
        root = merkle_root([r.leaf for r in mine])
        batches.append(NewBatch(device, root, tuple(r.seq for r in mine), 1, height))
    sent, unsent = await store.create_batches(batches)
    await anchor.anchor(gateway_key, AnchorBatch(LAMP, sent.root, 1, 3))

    batcher = await _batcher(store, anchor, gateway_key, batch_interval_s=3600)
    await batcher.stop()
    assert await store.unanchored_batches() == []
    assert len(await anchor.batches(0, device=LAMP)) == 1  # found, not sent again
    assert len(await anchor.batches(0, device=METER)) == 1  # sent now
    for device in (LAMP, METER):
        proof = await batcher.prove(device, 2)
        assert await verify_anchored(anchor, proof, gateway_key.address)
    assert unsent.id != sent.id


async def test_without_an_anchor_records_are_only_stored(store: SqliteDeviceStore) -> None:
    batcher = TelemetryBatcher(store)
    await batcher.start()
    await batcher.add(LAMP, _message(1, 1.0), 1)
    assert await batcher.flush() == []
    assert [r.seq for r in await batcher.records(LAMP)] == [1]
    assert await batcher.last_seq(LAMP) == 1
    await batcher.stop()
    with pytest.raises(ValueError, match="both"):
        TelemetryBatcher(store, signer=PrivateKey(bytes([1]) * 32))
