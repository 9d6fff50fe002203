"""TelemetryAnchor on every real ledger (embedded, Anvil, embedded over JSON-RPC):
anchoring one batch or many, finding them by device and root, refusing empty ones,
and what it costs."""

from __future__ import annotations

import pytest

from m2mpay.chain import AnchorBatch, Ledger, TelemetryAnchor, deploy_anchor, load_artifact
from m2mpay.chain.anchor import ANCHOR_GAS, anchor_many_gas
from m2mpay.crypto import Address, keccak256
from m2mpay.errors import ContractError, TransactionReverted

# Measured on the embedded chain and on Anvil (the same EVM rules): 24,972 to 24,984
# for one batch, depending on the zero bytes in its calldata. Pinned, so a change to
# the contract that makes anchoring dearer is noticed.
GAS_ONE_BATCH = 25_000


def _root(n: int) -> bytes:
    return keccak256(n.to_bytes(8, "big"))


@pytest.fixture
async def anchor(ledger: Ledger) -> TelemetryAnchor:
    contract, receipt = await deploy_anchor(ledger, ledger.dev_accounts()[0])
    assert receipt.gas_used < ANCHOR_GAS["deploy"]
    code = await ledger.code(contract.address)
    assert code.startswith(load_artifact("TelemetryAnchor").runtime_bytecode)
    return contract


async def test_one_batch_is_anchored_and_found_by_device_and_root(
    ledger: Ledger, anchor: TelemetryAnchor
) -> None:
    gateway, lamp, meter = ledger.dev_accounts()[1:4]
    batch = AnchorBatch(lamp.address, _root(1), 1, 100)
    receipt = await anchor.anchor(gateway, batch)
    assert 24_000 < receipt.gas_used <= GAS_ONE_BATCH
    await anchor.anchor(gateway, AnchorBatch(meter.address, _root(2), 1, 5))
    (found,) = await anchor.batches(0, device=lamp.address)
    assert found.batch == batch
    assert found.submitter == gateway.address
    assert (found.block_number, found.tx_hash) == (receipt.block_number, receipt.tx_hash)
    (by_root,) = await anchor.batches(0, root=_root(2))
    assert by_root.batch.device == meter.address
    assert await anchor.batches(0, submitter=lamp.address) == []
    assert len(await anchor.batches(0, submitter=gateway.address)) == 2


async def test_many_batches_in_one_transaction_cost_less_each(
    ledger: Ledger, anchor: TelemetryAnchor
) -> None:
    gateway = ledger.dev_accounts()[1]
    devices = [Address(bytes([i]) * 20) for i in range(1, 65)]
    batches = [AnchorBatch(d, _root(i), 10 * i, 10) for i, d in enumerate(devices)]
    receipt = await anchor.anchor_many(gateway, batches)
    assert receipt.gas_used < anchor_many_gas(64)
    assert receipt.gas_used / 64 < 5_000  # against ~25,000 for a transaction each
    found = await anchor.batches(receipt.block_number, receipt.block_number)
    assert [f.batch for f in found] == batches
    assert len({f.log_index for f in found}) == 64


async def test_empty_or_anonymous_batches_are_refused(
    ledger: Ledger, anchor: TelemetryAnchor
) -> None:
    gateway, lamp = ledger.dev_accounts()[1:3]
    abi = load_artifact("TelemetryAnchor").interface
    for call, reason in (
        (abi.encode_call("anchor", lamp.address, bytes(32), 1, 1), "empty root"),
        (abi.encode_call("anchor", lamp.address, _root(1), 1, 0), "empty batch"),
        (abi.encode_call("anchor", Address(bytes(20)), _root(1), 1, 1), "no device"),
        (abi.encode_call("anchor_many", []), "no batches"),
    ):
        with pytest.raises(TransactionReverted, match=reason):
            await ledger.transact(gateway, anchor.address, call, gas=100_000)
    assert await anchor.batches(0) == []
    # The binding refuses them before spending gas.
    with pytest.raises(ContractError):
        AnchorBatch(lamp.address, bytes(32), 1, 1)
    with pytest.raises(ContractError):
        AnchorBatch(lamp.address, _root(1), 1, 0)
    with pytest.raises(ContractError):
        await anchor.anchor_many(gateway, [])
