"""What both real ledgers share: a web3.py connection, reading and following the
chain; sending is `Web3Sending`'s."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any, Final, TypeVar

from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound, TransactionNotFound

from m2mpay.chain.forks import BlockWindow
from m2mpay.chain.ledger import (
    BlockInfo,
    BlockTag,
    Emitters,
    Ledger,
    LogEntry,
    Receipt,
    Topics,
    TransactionInfo,
)
from m2mpay.chain.rpc_forms import (
    block_info,
    log_entry,
    revert_reason,
    topic_filter,
    transaction_info,
)
from m2mpay.chain.web3_sending import Web3Sending
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import (
    LedgerError,
    LedgerUnavailable,
    TransactionReverted,
)

__all__ = ["Web3Ledger", "revert_reason"]

_OUTAGE_POLL_S: Final = (0.05, 1.0)  # a follower's first and longest pause in an outage

log = logging.getLogger("m2mpay.chain")
T = TypeVar("T")


class Web3Ledger(Web3Sending, Ledger):
    """A `Ledger` over an `AsyncWeb3` connection; subclasses supply the provider."""

    def __init__(
        self,
        *,
        receipt_poll_interval: float,
        block_poll_interval: float,
        dev_keys: Sequence[PrivateKey] = (),
    ) -> None:
        self._w3: AsyncWeb3[Any] | None = None
        self._chain_id: int | None = None
        self._genesis_hash: bytes | None = None
        self._receipt_poll = receipt_poll_interval
        self._block_poll = block_poll_interval
        self._dev_keys = list(dev_keys)
        Web3Sending.__init__(self)

    # -- lifecycle

    @abstractmethod
    async def _connect(self) -> AsyncWeb3[Any]:
        """Create the web3 connection."""

    async def _disconnect(self) -> None:
        """Release the connection's resources."""

    async def start(self) -> None:
        if self._w3 is not None:
            return
        w3 = await self._connect()
        # The default middleware validates and reformats requests we build
        # ourselves already, at the price of extra work on every call.
        w3.middleware_onion.clear()
        try:
            self._chain_id = int(await w3.eth.chain_id)
            self._genesis_hash = bytes((await w3.eth.get_block(0))["hash"])
        except LedgerError:
            raise
        except Exception as exc:
            await self._disconnect()
            raise LedgerUnavailable(f"{self.description}: cannot read chain id: {exc}") from exc
        self._w3 = w3

    async def stop(self) -> None:
        if self._w3 is None:
            return
        await self._stop_following()
        self._w3 = None
        await self._disconnect()

    def _started(self, part: T | None) -> T:
        """`part`, which exists only while the ledger runs."""
        if part is None:
            raise LedgerError(f"{self.description}: ledger is not started")
        return part

    @property
    def w3(self) -> AsyncWeb3[Any]:
        return self._started(self._w3)

    @property
    def chain_id(self) -> int:
        return self._started(self._chain_id)

    @property
    def genesis_hash(self) -> bytes:
        return self._started(self._genesis_hash)

    def dev_accounts(self) -> list[PrivateKey]:
        return list(self._dev_keys)

    # -- reading

    async def block_number(self) -> int:
        return int(await self.w3.eth.block_number)

    async def block_timestamp(self, block: BlockTag = "latest") -> int:
        return int((await self.w3.eth.get_block(block))["timestamp"])  # type: ignore[arg-type]

    async def block(self, ref: int | bytes) -> BlockInfo | None:
        if isinstance(ref, bytes) and len(ref) != 32:
            return None
        try:
            # Hashes only, not whole transactions: one read, and a small one.
            raw = await self.w3.eth.get_block(ref if isinstance(ref, int) else HexBytes(ref))
        except BlockNotFound:
            return None
        if not raw or raw.get("hash") is None:
            return None  # a pending block: not mined
        return block_info(raw)

    async def transaction(self, tx_hash: bytes) -> TransactionInfo | None:
        if len(tx_hash) != 32:
            return None
        try:
            tx, raw = await asyncio.gather(
                self.w3.eth.get_transaction(HexBytes(tx_hash)),
                self.w3.eth.get_transaction_receipt(HexBytes(tx_hash)),
            )
        except TransactionNotFound:
            return None
        if not tx or not raw or raw.get("blockNumber") is None:
            return None
        return transaction_info(tx, raw, self._receipt(raw))

    async def balance(self, address: Address, block: BlockTag = "latest") -> int:
        return int(await self.w3.eth.get_balance(address.checksum, block))  # type: ignore[arg-type]

    async def code(self, address: Address) -> bytes:
        return bytes(await self.w3.eth.get_code(address.checksum))

    async def call(
        self,
        to: Address,
        data: bytes,
        *,
        sender: Address | None = None,
        value: int = 0,
        block: BlockTag = "latest",
    ) -> bytes:
        request: dict[str, Any] = {"to": to.checksum, "data": "0x" + data.hex()}
        if sender is not None:
            request["from"] = sender.checksum
        if value:
            request["value"] = value
        try:
            return bytes(await self.w3.eth.call(request, block))  # type: ignore[arg-type]
        except Exception as exc:
            reason = revert_reason(exc)
            if reason is None:
                raise
            raise TransactionReverted(reason) from None

    async def _logs(
        self, addresses: list[Address], from_block: int, to_block: BlockTag, topics: Topics | None
    ) -> list[LogEntry]:
        params: dict[str, Any] = {
            "address": [a.checksum for a in addresses],
            "fromBlock": from_block,
            "toBlock": to_block,
        }
        wanted = topic_filter(topics)
        if wanted is not None:
            params["topics"] = wanted
        raw = await self.w3.eth.get_logs(params)  # type: ignore[arg-type]
        return [log_entry(entry) for entry in raw]

    async def subscribe(
        self,
        *,
        address: Emitters,
        from_block: int | None = None,
        topics: Topics | None = None,
    ) -> AsyncIterator[LogEntry]:
        next_block = (await self.block_number()) + 1 if from_block is None else from_block
        window = BlockWindow(first_block=next_block) if self.may_reorganise else None
        # What a reorganisation undid, kept across an outage until it is acted on.
        retracted: list[LogEntry] = []
        resend_after: int | None = None
        outage = _OUTAGE_POLL_S[0]
        while True:
            try:
                if window is None:
                    head = await self.block_number()
                else:
                    # One read gives the head, its hash and its parent's: all a quiet poll checks.
                    head, head_hash, parent = await self._head()
                    known = {head: head_hash, head - 1: parent}
                    fork = await window.fork_point(partial(self._hash_known, known))
                    if fork is not None:
                        log.warning(
                            "%s: reorganisation: the blocks after %d were replaced",
                            self.description,
                            fork,
                        )
                        retracted.extend(window.rewind(fork))
                        next_block = min(next_block, fork + 1)
                        resend_after = fork if resend_after is None else min(resend_after, fork)
                    if resend_after is not None:
                        await self.resend_dropped(resend_after)
                        resend_after = None
                    window.saw_block(head, head_hash)
                entries = (
                    await self.get_logs(
                        address=address, from_block=next_block, to_block=head, topics=topics
                    )
                    if head >= next_block
                    else None
                )
            except LedgerUnavailable as exc:
                # A follower lives as long as its node: it waits an outage out (a host
                # restarting) and goes on from the block it had reached, missing nothing.
                if outage == _OUTAGE_POLL_S[0]:
                    log.warning("%s: following paused: %s", self.description, exc)
                await asyncio.sleep(outage)
                outage = min(outage * 2, _OUTAGE_POLL_S[1])
                continue
            outage = _OUTAGE_POLL_S[0]
            while retracted:
                yield retracted.pop(0)
            if entries is None:
                await self._wait_for_block_after(head)
                continue
            for entry in entries:
                if window is not None:
                    window.delivered(entry)
                yield entry
            next_block = head + 1

    async def _head(self) -> tuple[int, bytes, bytes]:
        """The newest block's number, hash and parent's hash."""
        block = await self.w3.eth.get_block("latest")
        return int(block["number"]), bytes(block["hash"]), bytes(block["parentHash"])

    async def _hash_known(self, known: Mapping[int, bytes], number: int) -> bytes | None:
        # A follower one block behind checks the block it read through the head's parent.
        found = known.get(number)
        return found if found is not None else await self.block_hash(number)

    async def block_hash(self, block: int) -> bytes | None:
        try:
            found = await self.w3.eth.get_block(block)
        except BlockNotFound:
            return None
        return bytes(found["hash"]) if found else None

    async def _wait_for_block_after(self, head: int) -> None:
        """Return once a block after `head` may exist; polling by default."""
        await asyncio.sleep(self._block_poll)

    async def _raise_revert(
        self,
        sender: Address,
        to: Address | None,
        data: bytes,
        value: int,
        gas: int,
        receipt: Receipt,
    ) -> None:
        if receipt.gas_used >= gas:
            reason = f"out of gas (limit {gas})"
        elif to is None:
            reason = "contract deployment reverted"
        else:
            # Replay on the state before the block to learn the contract's message.
            try:
                await self.call(
                    to, data, sender=sender, value=value, block=max(receipt.block_number - 1, 0)
                )
                reason = "reverted (no reason given)"
            except TransactionReverted as exc:
                reason = exc.reason
            except Exception:
                reason = "reverted (reason unavailable)"
        raise TransactionReverted(reason, receipt.tx_hash, receipt.gas_used)
