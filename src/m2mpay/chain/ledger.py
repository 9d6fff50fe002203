"""The `Ledger` boundary: everything m2mpay asks of an EVM chain.

Two real implementations share one conformance suite: `EmbeddedLedger` (py-evm
in this process, the default) and `RpcLedger` (any JSON-RPC node). Transactions
are always signed locally and always carry an explicit gas limit: estimating gas
costs a round trip per transaction and makes the embedded EVM several times
slower.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from m2mpay.crypto import Address, PrivateKey
from m2mpay.lifecycle import Startable

__all__ = [
    "BlockInfo",
    "BlockTag",
    "Emitters",
    "Ledger",
    "LogEntry",
    "Receipt",
    "Topics",
    "TransactionInfo",
]

BlockTag = int | str  # a block number, or "latest" / "pending" / "earliest"
# The contracts whose logs are wanted: one, or any of several.
Emitters = Address | Sequence[Address]
# Per position: this topic, any of these, or anything (None).
Topics = Sequence[bytes | Sequence[bytes] | None]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event log as the chain reports it, undecoded.

    `removed` is set, as in JSON-RPC log subscriptions, when a follower retracts a log
    it delivered before because a reorganisation dropped its block.
    """

    address: Address
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: bytes
    log_index: int
    block_hash: bytes = b""
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of a mined transaction."""

    tx_hash: bytes
    block_number: int
    succeeded: bool
    gas_used: int
    effective_gas_price: int
    contract_address: Address | None
    logs: tuple[LogEntry, ...]


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """A mined block as an explorer shows it: its header's facts and its transactions."""

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int
    gas_used: int
    gas_limit: int
    transactions: tuple[bytes, ...]  # their hashes, in the block's order


@dataclass(frozen=True, slots=True)
class TransactionInfo:
    """A mined transaction with its receipt: what was asked of the chain and what came of it.

    `to` is None for a contract's deployment, whose address is `contract_address`."""

    hash: bytes
    sender: Address
    to: Address | None
    value: int
    input: bytes
    nonce: int
    gas: int
    block_number: int
    block_hash: bytes
    index: int  # its position in the block
    succeeded: bool
    gas_used: int
    effective_gas_price: int
    contract_address: Address | None
    logs: tuple[LogEntry, ...]


class Ledger(Startable):
    """An EVM chain, reached in this process or over JSON-RPC.

    Use it as an async context manager, or call `start` and `stop`.
    """

    # A chain whose newest blocks may be replaced: its followers check block hashes.
    may_reorganise: bool = True

    @property
    @abstractmethod
    def chain_id(self) -> int:
        """The EIP-155 chain id; known once started."""

    @property
    @abstractmethod
    def genesis_hash(self) -> bytes:
        """The hash of block 0; known once started. Chain ids repeat across dev chains
        (every embedded chain is 1337), a genesis block names one chain."""

    @property
    def caip2(self) -> str:
        """The chain's CAIP-2 id, e.g. `eip155:31337`."""
        return f"eip155:{self.chain_id}"

    @property
    @abstractmethod
    def description(self) -> str:
        """What this ledger is, for people: `embedded py-evm (…)`, an RPC URL."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    # -- reading

    @abstractmethod
    async def block_number(self) -> int:
        """The number of the newest mined block."""

    @abstractmethod
    async def block_timestamp(self, block: BlockTag = "latest") -> int:
        """A mined block's timestamp in seconds: the chain's clock."""

    @abstractmethod
    async def block_hash(self, block: int) -> bytes | None:
        """The hash of the block the chain holds at number `block` now (None: not that long)."""

    @abstractmethod
    async def block(self, ref: int | bytes) -> BlockInfo | None:
        """The block by number or 32-byte hash, one read; None for a block the chain
        does not hold (yet, or any more)."""

    @abstractmethod
    async def transaction(self, tx_hash: bytes) -> TransactionInfo | None:
        """A mined transaction with its receipt; None for one unknown or not mined yet."""

    @abstractmethod
    async def balance(self, address: Address, block: BlockTag = "latest") -> int:
        """Native balance in wei."""

    @abstractmethod
    async def code(self, address: Address) -> bytes:
        """The runtime code at `address` (empty for an account without code)."""

    @abstractmethod
    async def call(
        self,
        to: Address,
        data: bytes,
        *,
        sender: Address | None = None,
        value: int = 0,
        block: BlockTag = "latest",
    ) -> bytes:
        """Run a call without a transaction; raises `TransactionReverted` with the reason."""

    async def get_logs(
        self,
        *,
        address: Emitters,
        from_block: int,
        to_block: BlockTag = "latest",
        topics: Topics | None = None,
    ) -> list[LogEntry]:
        """Logs emitted by `address` in the block range, in chain order."""
        addresses = [address] if isinstance(address, Address) else list(address)
        return await self._logs(addresses, from_block, to_block, topics)

    @abstractmethod
    async def _logs(
        self, addresses: list[Address], from_block: int, to_block: BlockTag, topics: Topics | None
    ) -> list[LogEntry]:
        """`get_logs`, with its emitters always a list."""

    @abstractmethod
    def subscribe(
        self,
        *,
        address: Emitters,
        from_block: int | None = None,
        topics: Topics | None = None,
    ) -> AsyncIterator[LogEntry]:
        """Logs as blocks are mined, from `from_block` (default: the next block) on.

        Logs of blocks mined while nobody iterated are not lost: iteration
        resumes at the block after the last one it delivered.

        When a reorganisation drops blocks it delivered logs from, it delivers those
        logs again with `removed=True` (newest first), then the new chain's logs from
        the fork point on. Our own transactions the reorganisation dropped have been
        broadcast again (the same signed bytes) by then. A chain that never
        reorganises (the embedded one) never removes a log.
        """

    # -- writing

    @abstractmethod
    async def resend_dropped(self, fork: int) -> None:
        """Broadcast again, byte for byte, the transactions this ledger sent that were
        mined after block `fork` (or not seen mined) and that the chain no longer holds.

        `subscribe` does it itself when it notices a reorganisation; a reader that
        follows the chain by other means calls it when it notices one.
        """

    @abstractmethod
    async def send(
        self,
        signer: PrivateKey,
        to: Address | None,
        data: bytes,
        *,
        gas: int,
        value: int = 0,
    ) -> bytes:
        """Sign locally and submit; returns the transaction hash without waiting."""

    @abstractmethod
    async def wait_for_receipt(self, tx_hash: bytes, *, timeout: float = 60.0) -> Receipt:
        """The receipt once mined; raises `ReceiptTimeout` after `timeout` seconds."""

    async def transact(
        self,
        signer: PrivateKey,
        to: Address | None,
        data: bytes,
        *,
        gas: int,
        value: int = 0,
        timeout: float = 60.0,
    ) -> Receipt:
        """Send, wait, and raise `TransactionReverted` with the reason when it failed."""
        tx_hash = await self.send(signer, to, data, gas=gas, value=value)
        receipt = await self.wait_for_receipt(tx_hash, timeout=timeout)
        if not receipt.succeeded:
            await self._raise_revert(signer.address, to, data, value, gas, receipt)
        return receipt

    async def deploy(
        self, signer: PrivateKey, init_code: bytes, *, gas: int, value: int = 0
    ) -> Receipt:
        """Deploy a contract; the receipt carries its address."""
        return await self.transact(signer, None, init_code, gas=gas, value=value)

    @abstractmethod
    async def _raise_revert(
        self,
        sender: Address,
        to: Address | None,
        data: bytes,
        value: int,
        gas: int,
        receipt: Receipt,
    ) -> None:
        """Raise `TransactionReverted` for a failed receipt, with the best reason known."""

    # -- development chains

    @abstractmethod
    async def advance_time(self, seconds: int) -> None:
        """Move the chain clock forward and mine a block (dev chains only).

        Raises `UnsupportedOperation` on a chain that cannot do it.
        """

    def dev_accounts(self) -> list[PrivateKey]:
        """Funded accounts of a development chain; empty on real networks."""
        return []
