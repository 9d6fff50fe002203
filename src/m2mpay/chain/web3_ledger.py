"""What both real ledgers share: a web3.py connection, local signing, nonces, fees."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any, Final, TypeVar

from eth_account import Account
from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound, TransactionNotFound

from m2mpay.chain.forks import BlockWindow, SentTransactions
from m2mpay.chain.ledger import BlockTag, Emitters, Ledger, LogEntry, Receipt, Topics
from m2mpay.chain.rpc_forms import log_entry, revert_reason, topic_filter
from m2mpay.crypto import Address, PrivateKey, keccak256
from m2mpay.errors import (
    InsufficientFunds,
    LedgerError,
    LedgerUnavailable,
    ReceiptTimeout,
    TransactionReverted,
)

__all__ = ["Web3Ledger", "revert_reason"]

# How nodes say a sender cannot pay value plus gas (geth/anvil, eth-tester, py-evm).
_NONCE_TAKEN: Final = ("nonce", "replacement transaction underpriced")
_ALREADY_SENT: Final = ("already known", "already imported")
_CANNOT_PAY: Final = ("insufficient funds", "cannot afford", "not have enough balance")

_AWAY_POLL_S: Final = 0.1
# Another process using the same key takes nonces too: ask the node again, a few times.
_NONCE_TRIES: Final = 8
_FEE_CACHE_SECONDS = 2.0
_OUTAGE_POLL_S: Final = (0.05, 1.0)  # a follower's first and longest pause in an outage

log = logging.getLogger("m2mpay.chain")
T = TypeVar("T")


class Web3Ledger(Ledger):
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
        self._nonces: dict[Address, int] = {}
        self._send_locks: dict[Address, asyncio.Lock] = {}
        self._fees: tuple[float, int, int] | None = None
        self._sent = SentTransactions()

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

    async def resend_dropped(self, fork: int) -> None:
        """Send again, byte for byte, our transactions that blocks after `fork` held and
        the chain no longer does: what we asked of the chain still happens, once."""
        for tx_hash, tx in self._sent.possibly_dropped(fork):
            if await self._mined_in(tx_hash) is not None:
                continue
            async with self._send_locks.setdefault(tx.sender, asyncio.Lock()):
                try:
                    await self.w3.eth.send_raw_transaction(tx.raw)
                    log.info("%s: sent 0x%s again", self.description, tx_hash.hex())
                except LedgerUnavailable:
                    raise
                except Exception as exc:
                    # Another follower of this ledger may have sent it again first.
                    text = str(exc).lower()
                    sent = any(words in text for words in _ALREADY_SENT)
                    if not sent and await self._mined_in(tx_hash) is None:
                        log.warning(
                            "%s: cannot send 0x%s again: %s", self.description, tx_hash.hex(), exc
                        )
        # The chain's count of our senders' nonces may have gone back (a dropped
        # transaction we no longer hold): ask it again rather than leave a gap.
        self._nonces.clear()

    async def _mined_in(self, tx_hash: bytes) -> int | None:
        try:
            raw = await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        if raw is None or raw.get("blockNumber") is None:
            return None
        self._sent.mined(tx_hash, int(raw["blockNumber"]))
        return int(raw["blockNumber"])

    async def _wait_for_block_after(self, head: int) -> None:
        """Return once a block after `head` may exist; polling by default."""
        await asyncio.sleep(self._block_poll)

    # -- writing

    async def _fee_params(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas), refreshed every few seconds."""
        now = time.monotonic()
        if self._fees is not None and now - self._fees[0] < _FEE_CACHE_SECONDS:
            return self._fees[1], self._fees[2]
        block = await self.w3.eth.get_block("latest")
        base_fee = int(block.get("baseFeePerGas", 0))
        try:
            tip = int(await self.w3.eth.max_priority_fee)
        except Exception:
            tip = 10**9
        # Twice the base fee survives six full blocks of base-fee growth.
        max_fee = 2 * base_fee + tip
        self._fees = (now, max_fee, tip)
        return max_fee, tip

    async def send(
        self,
        signer: PrivateKey,
        to: Address | None,
        data: bytes,
        *,
        gas: int,
        value: int = 0,
    ) -> bytes:
        if gas <= 0:
            raise LedgerError("a transaction needs an explicit positive gas limit")
        sender = signer.address
        lock = self._send_locks.setdefault(sender, asyncio.Lock())
        async with lock:
            for attempt in range(_NONCE_TRIES):
                last_try = attempt == _NONCE_TRIES - 1
                cached = self._nonces.get(sender)
                nonce = (
                    cached
                    if cached is not None
                    else int(await self.w3.eth.get_transaction_count(sender.checksum, "pending"))
                )
                raw = await self._signed(signer, to, data, gas=gas, value=value, nonce=nonce)
                try:
                    tx_hash = bytes(await self.w3.eth.send_raw_transaction(raw))
                except Exception as exc:
                    # The node may know a different nonce: another process uses the key.
                    self._nonces.pop(sender, None)
                    text = str(exc)
                    if any(words in text.lower() for words in _ALREADY_SENT):
                        self._nonces[sender] = nonce + 1
                        self._sent.sent(keccak256(raw), sender, nonce, raw)
                        return keccak256(raw)  # this very transaction: sent before
                    if any(words in text.lower() for words in _NONCE_TAKEN) and not last_try:
                        continue
                    if any(words in text.lower() for words in _CANNOT_PAY):
                        raise InsufficientFunds(
                            f"{self.description}: {sender} cannot pay value and gas: {text}"
                        ) from exc
                    raise LedgerError(f"{self.description}: transaction refused: {text}") from exc
                self._nonces[sender] = nonce + 1
                self._sent.sent(tx_hash, sender, nonce, raw)
                return tx_hash
        raise AssertionError("the last try returns or raises")

    async def _signed(
        self,
        signer: PrivateKey,
        to: Address | None,
        data: bytes,
        *,
        gas: int,
        value: int,
        nonce: int,
    ) -> bytes:
        max_fee, tip = await self._fee_params()
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": nonce,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
            "value": value,
            "data": data,
            "type": 2,
        }
        if to is not None:
            tx["to"] = to.checksum
        return bytes(Account.sign_transaction(tx, signer.secret).raw_transaction)

    async def wait_for_receipt(self, tx_hash: bytes, *, timeout: float = 60.0) -> Receipt:
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                raw = None
            except LedgerUnavailable:
                # The node restarts: a transaction it took may still be in its chain.
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(_AWAY_POLL_S)
                continue
            if raw is not None and raw.get("blockNumber") is not None:
                self._sent.mined(tx_hash, int(raw["blockNumber"]))
                return self._receipt(raw)
            if time.monotonic() >= deadline:
                raise ReceiptTimeout(
                    f"{self.description}: no receipt for 0x{tx_hash.hex()} after {timeout}s"
                )
            await asyncio.sleep(self._receipt_poll)

    @staticmethod
    def _receipt(raw: Mapping[str, Any]) -> Receipt:
        contract = raw.get("contractAddress")
        return Receipt(
            tx_hash=bytes(raw["transactionHash"]),
            block_number=int(raw["blockNumber"]),
            succeeded=int(raw["status"]) == 1,
            gas_used=int(raw["gasUsed"]),
            effective_gas_price=int(raw.get("effectiveGasPrice") or 0),
            contract_address=Address(contract) if contract else None,
            logs=tuple(log_entry(entry) for entry in raw["logs"]),
        )

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
