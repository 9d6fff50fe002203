"""Binding of the TelemetryAnchor contract: anchor Merkle roots of telemetry batches,
and find them again in the chain's logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from m2mpay.chain.binding import ContractBinding, deploy_binding
from m2mpay.chain.ledger import BlockTag, Ledger, LogEntry, Receipt
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import ContractError

__all__ = [
    "ANCHOR_GAS",
    "MAX_BATCHES_PER_TX",
    "AnchorBatch",
    "AnchoredBatch",
    "TelemetryAnchor",
    "anchor_many_gas",
    "deploy_anchor",
]

# About 1.5x what each call measures (tests/bus/test_anchor.py records the
# receipts), so no transaction pays a round trip for estimation.
ANCHOR_GAS: Final = {
    "deploy": 300_000,
    "anchor": 40_000,
    "anchor_many_base": 30_000,
    "anchor_many_per_batch": 6_000,
}
MAX_BATCHES_PER_TX: Final = 64  # the contract's MAX_BATCHES
_UINT64_LIMIT: Final = 1 << 64


def anchor_many_gas(batches: int) -> int:
    """The gas limit for anchoring `batches` batches in one `anchor_many`."""
    return ANCHOR_GAS["anchor_many_base"] + batches * ANCHOR_GAS["anchor_many_per_batch"]


@dataclass(frozen=True, slots=True)
class AnchorBatch:
    """What one anchor commits to: `count` records of `device` from `first_seq` on,
    summed up by the Merkle `root` of their leaves."""

    device: Address
    root: bytes
    first_seq: int
    count: int

    def __post_init__(self) -> None:
        if len(self.root) != 32 or self.root == bytes(32):
            raise ContractError("a batch root is 32 bytes and not zero")
        if not 0 < self.count < _UINT64_LIMIT or not 0 <= self.first_seq < _UINT64_LIMIT:
            raise ContractError("a batch has 1 to 2**64 - 1 records and a uint64 first seq")


@dataclass(frozen=True, slots=True)
class AnchoredBatch:
    """An `Anchored` event as the chain holds it."""

    batch: AnchorBatch
    submitter: Address
    block_number: int
    tx_hash: bytes
    log_index: int


class TelemetryAnchor(ContractBinding):
    ARTIFACT = "TelemetryAnchor"

    def __init__(self, ledger: Ledger, address: Address) -> None:
        super().__init__(ledger, address)
        self._topic = self._abi.event_topic("Anchored")

    async def anchor(self, signer: PrivateKey, batch: AnchorBatch) -> Receipt:
        data = self._abi.encode_call(
            "anchor", batch.device, batch.root, batch.first_seq, batch.count
        )
        return await self.ledger.transact(signer, self.address, data, gas=ANCHOR_GAS["anchor"])

    async def anchor_many(self, signer: PrivateKey, batches: Sequence[AnchorBatch]) -> Receipt:
        """Anchor up to `MAX_BATCHES_PER_TX` batches in one transaction."""
        data, gas = self._many(batches)
        return await self.ledger.transact(signer, self.address, data, gas=gas)

    async def submit(self, signer: PrivateKey, batches: Sequence[AnchorBatch]) -> bytes:
        """Send the transaction that anchors up to `MAX_BATCHES_PER_TX` batches, without
        waiting: its hash, for a caller that keeps it before the receipt comes."""
        if len(batches) == 1:
            batch = batches[0]
            data = self._abi.encode_call(
                "anchor", batch.device, batch.root, batch.first_seq, batch.count
            )
            return await self.ledger.send(signer, self.address, data, gas=ANCHOR_GAS["anchor"])
        data, gas = self._many(batches)
        return await self.ledger.send(signer, self.address, data, gas=gas)

    def _many(self, batches: Sequence[AnchorBatch]) -> tuple[bytes, int]:
        if not 0 < len(batches) <= MAX_BATCHES_PER_TX:
            raise ContractError(f"anchor 1 to {MAX_BATCHES_PER_TX} batches per transaction")
        rows = [(b.device, b.root, b.first_seq, b.count) for b in batches]
        return self._abi.encode_call("anchor_many", rows), anchor_many_gas(len(batches))

    def decode(self, log: LogEntry) -> AnchoredBatch | None:
        """The batch an `Anchored` log of this contract announces; None for other logs."""
        if log.address != self.address:
            return None
        event = self._abi.decode_event(log)
        if event is None or event.name != "Anchored":
            return None
        args = event.args
        return AnchoredBatch(
            AnchorBatch(Address(args["device"]), args["root"], args["first_seq"], args["count"]),
            Address(args["submitter"]),
            log.block_number,
            log.tx_hash,
            log.log_index,
        )

    async def batches(
        self,
        from_block: int,
        to_block: BlockTag = "latest",
        *,
        submitter: Address | None = None,
        device: Address | None = None,
        root: bytes | None = None,
    ) -> list[AnchoredBatch]:
        """Anchored batches in a block range, filtered by the indexed fields given."""
        topics: list[bytes | None] = [
            self._topic,
            _word(submitter) if submitter is not None else None,
            _word(device) if device is not None else None,
            root,
        ]
        while topics and topics[-1] is None:
            topics.pop()
        logs = await self.ledger.get_logs(
            address=self.address, from_block=from_block, to_block=to_block, topics=topics
        )
        return [found for log in logs if (found := self.decode(log)) is not None]


def _word(address: Address) -> bytes:
    return bytes(12) + bytes(address)


async def deploy_anchor(ledger: Ledger, deployer: PrivateKey) -> tuple[TelemetryAnchor, Receipt]:
    return await deploy_binding(TelemetryAnchor, ledger, deployer, gas=ANCHOR_GAS["deploy"])
