"""`EmbeddedLedger`: an EVM inside this process (py-evm via eth-tester, through web3.py).

It is the default ledger: nothing to install or start. Given a data directory,
its chain lives in a SQLite file there and survives restarts, so deposits do not
vanish when a node restarts. Every transaction is mined into its own block at
once, stamped with the wall clock (plus any `advance_time`), and committed to
disk before its receipt is visible.

Logs are answered from a `LogIndex` filled as blocks are mined, not by
eth-tester's receipt walk, whose cost grows with the square of the distance from
the head. The EVM runs on the event loop, so every send yields to the loop once
it is mined: a burst of transactions must not starve the JSON-RPC clients this
process serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from eth import EVM_RECURSION_LIMIT
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.schema import SchemaV1
from eth.exceptions import HeaderNotFound
from eth.vm.forks.prague import PragueVM
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import (
    generate_genesis_state_for_keys,
    get_account_keys_from_mnemonic,
    get_default_genesis_params,
)
from eth_typing import BlockNumber, Hash32
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from m2mpay.chain.chaindb import SqliteChainDB
from m2mpay.chain.devkeys import DEV_HD_PATH, DEV_MNEMONIC, dev_keys
from m2mpay.chain.ledger import BlockInfo, BlockTag, LogEntry, Topics
from m2mpay.chain.logindex import IndexedLog, LogIndex, TopicFilter
from m2mpay.chain.web3_ledger import Web3Ledger
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import LedgerError

# py_ecc, imported with py-evm, raises the interpreter's recursion limit to 100,000, far
# beyond what the 8 MiB C stack holds for parsers that recurse in C (the standard
# library's JSON among them): one deeply nested body would end the process. The EVM's
# own need (1024 nested calls) is py-evm's figure, which the C stack honours.
sys.setrecursionlimit(min(sys.getrecursionlimit(), EVM_RECURSION_LIMIT))

__all__ = ["DEFAULT_EMBEDDED_CHAIN_ID", "EmbeddedLedger"]

DEFAULT_EMBEDDED_CHAIN_ID: Final = 1337
_DEV_BALANCE_WEI: Final = 10_000 * 10**18
_CLOCK_OFFSET_KEY: Final = "clock_offset_seconds"
_CHAIN_ID_KEY: Final = "chain_id"
_CHAIN_FILE: Final = "chain.sqlite3"
_PRIORITY_FEE: Final = 10**9
_MAX_FEE: Final = 3 * 10**9
# A JSON-RPC request needs about three turns of the loop from bytes on the socket
# to its answer (aiohttp, measured): with four turns after each transaction a
# waiting client is answered between two transactions, not after every third.
_LOOP_TURNS: Final = 4


class _DevPragueVM(PragueVM):
    """Prague, but several blocks may share a second, as on Anvil.

    Mainnet wants each block strictly later than its parent; a dev chain that
    mines a block per transaction would then run its clock ahead of the wall
    clock by a second for every block beyond one a second.
    """

    @classmethod
    def validate_header(cls, header: Any, parent_header: Any) -> None:
        if header.timestamp == parent_header.timestamp:
            header = header.copy(timestamp=header.timestamp + 1)
        super().validate_header(header, parent_header)


def _chain_class(chain_id: int) -> type[MiningChain]:
    class EmbeddedChain(MiningChain):
        vm_configuration = ((BlockNumber(0), _DevPragueVM),)

        def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
            # A dev chain has no reason to move its gas limit.
            header_params["gas_limit"] = parent_header.gas_limit
            return super().create_header_from_parent(parent_header, **header_params)

        def get_transaction_builder(self) -> Any:
            return self.get_vm().get_transaction_builder()

    EmbeddedChain.chain_id = chain_id
    return EmbeddedChain


class _ChainBackend(PyEVMBackend):  # type: ignore[misc]
    """eth-tester's py-evm backend on our database, clock and chain id."""

    def __init__(
        self,
        base_db: Any,
        chain_db: SqliteChainDB | None,
        chain_id: int,
        mnemonic: str,
        accounts: int,
        clock_offset: int,
    ) -> None:
        self._base_db = base_db
        self._chain_db = chain_db
        self._chain_id_value = chain_id
        self._mnemonic = mnemonic
        self._accounts = accounts
        self.clock_offset = clock_offset
        self.on_block_mined: list[Any] = []
        if chain_db is None:
            self.log_index = LogIndex.in_memory()
        else:
            self.log_index = LogIndex(chain_db.connection)
            chain_db.add_participant(self.log_index)
        super().__init__()

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        keys = get_account_keys_from_mnemonic(
            self._mnemonic, quantity=self._accounts, hd_path=DEV_HD_PATH
        )
        chain_class = _chain_class(self._chain_id_value)
        self.account_keys = tuple(keys)
        if SchemaV1.make_canonical_head_hash_lookup_key() not in self._base_db:
            # Every embedded chain has the same id and the same contract addresses;
            # random extra data makes its genesis, which peers compare, its own.
            genesis = get_default_genesis_params(
                {"timestamp": self.now(), "extra_data": secrets.token_bytes(32)}
            )
            state = dict(generate_genesis_state_for_keys(keys, {"balance": _DEV_BALANCE_WEI}))
            self.chain: MiningChain = chain_class.from_genesis(self._base_db, genesis, state)  # type: ignore[assignment]
        else:
            self.chain = chain_class(self._base_db)
        # A data dir written before the log index existed is indexed once here;
        # afterwards the index commits with each block and is never behind.
        head = self.chain.get_canonical_head().block_number
        for number in range(self.log_index.indexed_through() + 1, head + 1):
            self._index_block(self.chain.get_canonical_block_by_number(BlockNumber(number)))
        self._commit()

    def now(self) -> int:
        return int(time.time()) + self.clock_offset

    def _stamp_pending_block(self) -> None:
        # eth-tester stamps a block when the previous one is mined; after an idle
        # minute that stamp is a minute old and challenge deadlines would start
        # in the past. Re-stamp an empty pending block with the current time.
        if self.chain.header.gas_used == 0:
            parent = self.chain.get_canonical_head()
            stamp = max(parent.timestamp, self.now())
            if stamp != self.chain.header.timestamp:
                self.chain.header = self.chain.header.copy(timestamp=stamp)

    def send_raw_transaction(self, raw_transaction: bytes) -> bytes:
        self._stamp_pending_block()
        return super().send_raw_transaction(raw_transaction)  # type: ignore[no-any-return]

    def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> tuple[bytes, ...]:
        hashes: list[bytes] = []
        for _ in range(num_blocks):
            self._stamp_pending_block()
            # eth-tester's default coinbase applies unless one is given.
            mined = super().mine_blocks(*((1,) if coinbase is None else (1, coinbase)))
            for block_hash in mined:
                self._index_block(self.chain.get_block_by_hash(block_hash))
            hashes.extend(mined)
        self._commit()
        for callback in self.on_block_mined:
            callback()
        return tuple(hashes)

    def block_number_of(self, block: Any) -> int:
        """A block number, or a tag (None meaning "latest") as the number it names now."""
        if isinstance(block, int):
            return block
        head = int(self.chain.get_canonical_head().block_number)
        if block == "earliest":
            return 0
        if block == "pending":
            return head + 1
        return head  # latest, safe, finalized: every block is final on this chain

    def logs(
        self,
        from_block: Any,
        to_block: Any,
        addresses: Sequence[bytes] | None = None,
        topics: TopicFilter | None = None,
    ) -> list[IndexedLog]:
        """Logs of the canonical chain in a block range, from the index."""
        # Cut at the head: after an evm_revert the index still holds rows of the
        # abandoned blocks until blocks of those numbers are mined again.
        head = int(self.chain.get_canonical_head().block_number)
        last = min(self.block_number_of(to_block), head)
        return self.log_index.query(self.block_number_of(from_block), last, addresses, topics)

    def _index_block(self, block: Any) -> None:
        logs: list[IndexedLog] = []
        receipts = block.get_receipts(self.chain.chaindb)
        for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
            for log in receipt.logs:
                logs.append(
                    IndexedLog(
                        block_number=block.number,
                        log_index=len(logs),  # counted over the block, as nodes do
                        block_hash=block.hash,
                        tx_index=tx_index,
                        tx_hash=tx.hash,
                        address=log.address,
                        data=log.data,
                        topics=tuple(topic.to_bytes(32, "big") for topic in log.topics),
                    )
                )
        self.log_index.stage(block.number, logs)

    def _commit(self) -> None:
        if self._chain_db is not None:
            # The chain's file commits the staged log rows in the same transaction.
            self._chain_db.set_meta(_CLOCK_OFFSET_KEY, str(self.clock_offset))
            self._chain_db.commit()
        else:
            self.log_index.commit()


class _IndexedTester(EthereumTester):  # type: ignore[misc]
    """eth-tester answering log reads from the backend's `LogIndex`."""

    backend: _ChainBackend

    def get_logs(
        self,
        from_block: Any = None,
        to_block: Any = None,
        address: Any = None,
        topics: Any = None,
    ) -> tuple[dict[str, Any], ...]:
        # Same validation and normalization as eth-tester's own, so callers see
        # the same errors; only where the logs come from differs.
        self.validator.validate_inbound_filter_params(
            from_block=from_block, to_block=to_block, address=address, topics=topics
        )
        first, last, addresses, topic_filter = self.normalizer.normalize_inbound_filter_params(
            from_block=from_block, to_block=to_block, address=address, topics=topics
        )
        if addresses is not None and isinstance(addresses, bytes):
            addresses = (addresses,)
        logs = self.backend.logs(first, last, addresses, topic_filter)
        return tuple(log.outbound() for log in logs)

    def _add_log_entries_to_filter(self, block: Any, filter_: Any) -> None:
        # eth-tester fills log filters (eth_newFilter) block by block through the
        # same receipt walk as its get_logs.
        number = block["number"]
        for log in self.backend.logs(number, number):
            filter_.add(log.raw())


async def _let_others_run() -> None:
    for _ in range(_LOOP_TURNS):
        await asyncio.sleep(0)


class EmbeddedLedger(Web3Ledger):
    """py-evm in this process; persistent when `data_dir` is given, in memory otherwise."""

    # One miner, one chain: no block it mined is ever replaced, so followers skip the
    # per-poll check (its clients over JSON-RPC cannot know that and still check).
    may_reorganise = False

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        chain_id: int = DEFAULT_EMBEDDED_CHAIN_ID,
        accounts: int = 10,
        mnemonic: str = DEV_MNEMONIC,
    ) -> None:
        super().__init__(
            receipt_poll_interval=0.001,
            block_poll_interval=0.05,
            dev_keys=dev_keys(accounts, mnemonic),
        )
        self._data_dir = data_dir
        self._requested_chain_id = chain_id
        self._accounts = accounts
        self._mnemonic = mnemonic
        self._chain_db: SqliteChainDB | None = None
        self._backend: _ChainBackend | None = None
        self._tester: EthereumTester | None = None
        self._new_block = asyncio.Event()

    @property
    def description(self) -> str:
        where = f"data dir {self._data_dir}" if self._data_dir else "in memory"
        return f"embedded py-evm ({where})"

    @property
    def data_dir(self) -> Path | None:
        return self._data_dir

    async def _connect(self) -> AsyncWeb3[Any]:
        chain_id = self._requested_chain_id
        clock_offset = 0
        if self._data_dir is not None:
            self._chain_db = SqliteChainDB(self._data_dir / _CHAIN_FILE)
            stored_id = self._chain_db.get_meta(_CHAIN_ID_KEY)
            if stored_id is not None and int(stored_id) != chain_id:
                self._chain_db.close()
                self._chain_db = None
                raise LedgerError(
                    f"{self._data_dir} holds chain {stored_id}, not the requested {chain_id}"
                )
            self._chain_db.set_meta(_CHAIN_ID_KEY, str(chain_id))
            clock_offset = int(self._chain_db.get_meta(_CLOCK_OFFSET_KEY) or 0)
            base_db: Any = AtomicDB(self._chain_db)
        else:
            base_db = AtomicDB()
        self._backend = _ChainBackend(
            base_db, self._chain_db, chain_id, self._mnemonic, self._accounts, clock_offset
        )
        self._backend.on_block_mined.append(self._new_block.set)
        provider = AsyncEthereumTesterProvider()
        self._tester = _IndexedTester(backend=self._backend)
        provider.ethereum_tester = self._tester
        # web3's tester endpoints answer eth_chainId with a constant of their own.
        endpoints = dict(provider.api_endpoints)
        endpoints["eth"] = {**endpoints["eth"], "chainId": lambda *_: chain_id}
        provider.api_endpoints = endpoints
        return AsyncWeb3(provider)

    async def _disconnect(self) -> None:
        if self._chain_db is not None:
            self._chain_db.commit()
            self._chain_db.close()
            self._chain_db = None
        self._backend = None
        self._tester = None

    async def _fee_params(self) -> tuple[int, int]:
        # The base fee starts at 1 gwei and only falls on a chain of one-transaction
        # blocks, so fixed fees always suffice and save a block read per transaction.
        return _MAX_FEE, _PRIORITY_FEE

    async def _wait_for_block_after(self, head: int) -> None:
        self._new_block.clear()
        if await self.block_number() > head:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._block_poll * 20):
                await self._new_block.wait()

    async def _logs(
        self, addresses: list[Address], from_block: int, to_block: BlockTag, topics: Topics | None
    ) -> list[LogEntry]:
        # Straight from the index: web3's and eth-tester's formatting of each log
        # costs ten times the query. JSON-RPC clients read the same index through
        # `_IndexedTester.get_logs`.
        logs = self._require_backend().logs(from_block, to_block, addresses, topics)
        return [
            LogEntry(
                address=Address(log.address),
                topics=log.topics,
                data=log.data,
                block_number=log.block_number,
                tx_hash=log.tx_hash,
                log_index=log.log_index,
                block_hash=log.block_hash,
            )
            for log in logs
        ]

    async def block(self, ref: int | bytes) -> BlockInfo | None:
        # Straight from py-evm's database: the header and the hashes of its transactions,
        # without decoding them and without web3's formatting, a tenth of the cost.
        chain = self._require_backend().chain
        try:
            if isinstance(ref, int):
                header = chain.chaindb.get_canonical_block_header_by_number(BlockNumber(ref))
            else:
                header = chain.chaindb.get_block_header_by_hash(Hash32(ref))
                if chain.chaindb.get_canonical_block_hash(header.block_number) != header.hash:
                    return None  # a block of an abandoned branch (after an evm_revert)
            hashes = chain.chaindb.get_block_transaction_hashes(header)
        except (HeaderNotFound, ValueError):
            return None
        return BlockInfo(
            number=header.block_number,
            hash=header.hash,
            parent_hash=header.parent_hash,
            timestamp=header.timestamp,
            gas_used=header.gas_used,
            gas_limit=header.gas_limit,
            transactions=tuple(hashes),
        )

    async def send(
        self,
        signer: PrivateKey,
        to: Address | None,
        data: bytes,
        *,
        gas: int,
        value: int = 0,
    ) -> bytes:
        tx_hash = await super().send(signer, to, data, gas=gas, value=value)
        # eth-tester executed and mined the transaction inside that call without
        # ever awaiting: let the loop serve others before the next one.
        await _let_others_run()
        return tx_hash

    async def advance_time(self, seconds: int) -> None:
        self.increase_time(seconds)
        self.mine()
        await _let_others_run()  # mining, like sending, never awaits

    def increase_time(self, seconds: int) -> None:
        """Move the chain clock forward; the next block carries the new time."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._require_backend().clock_offset += seconds

    def mine(self, blocks: int = 1) -> None:
        """Mine `blocks` empty blocks now (committed to disk once, after the last)."""
        if blocks < 1:
            raise ValueError("mine at least one block")
        self._started(self._tester).mine_blocks(blocks)

    def _require_backend(self) -> _ChainBackend:
        return self._started(self._backend)
