"""What a web3 ledger does with its own transactions: number them (nonces, shared
with any other process using the key), price them, sign and broadcast them, follow
them to their receipts, and send again what the chain lost.

Two ways the chain loses a transaction we sent. A reorganisation drops it: it is
broadcast again byte for byte (`resend_dropped`), the same nonce making that
idempotent. Or another process using the same key sends a different transaction with
the same nonce before ours is mined (a higher fee in the pool, or first into the chain
that replaced ours): its nonce is gone, so it can never be mined. `wait_for_receipt`
and `resend_dropped` notice that (the sender's mined count passed our nonce, and ours
has no receipt) and send what was asked once more, under a new nonce. A transaction
sent again after a reorganisation has no caller waiting on it any more: the ledger
follows it to its receipt itself, so a nonce taken from it after its rebroadcast is
noticed too.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from eth_account import Account
from web3 import AsyncWeb3
from web3.exceptions import TransactionNotFound

from m2mpay.chain.forks import Intent, SentTransactions
from m2mpay.chain.ledger import Receipt
from m2mpay.chain.rpc_forms import log_entry
from m2mpay.crypto import Address, PrivateKey, keccak256
from m2mpay.errors import (
    InsufficientFunds,
    LedgerError,
    LedgerUnavailable,
    ReceiptTimeout,
)

__all__ = ["Web3Sending"]

log = logging.getLogger("m2mpay.chain")

_NONCE_TAKEN: Final = ("nonce", "replacement transaction underpriced")
_ALREADY_SENT: Final = ("already known", "already imported")
_CANNOT_PAY: Final = ("insufficient funds", "cannot afford", "not have enough balance")

_AWAY_POLL_S: Final = 0.1
# Another process using the same key takes nonces too: ask the node again, a few times.
_NONCE_TRIES: Final = 12
# The longest pause after a first lost nonce; it doubles each try up to the last bound
# (at most about 5 s in all), so senders that keep meeting spread further apart.
_NONCE_PAUSE_S: Final = (0.02, 1.0)
_FEE_CACHE_SECONDS = 2.0
# How often a receipt wait asks whether its transaction's nonce went to another one.
_REPLACED_CHECK_S: Final = 0.5
# How long the ledger follows a transaction it sent again before it gives up on it.
_RESENT_FOLLOWED_S: Final = 600.0


class Web3Sending:
    """The sending half of `Web3Ledger` (see the module docstring)."""

    _receipt_poll: float

    def __init__(self) -> None:
        self._nonces: dict[Address, int] = {}
        self._send_locks: dict[Address, asyncio.Lock] = {}
        self._fees: tuple[float, int, int] | None = None
        self._sent = SentTransactions()
        # One transaction found replaced is sent again by one waiter, however many wait.
        self._replacing = asyncio.Lock()
        self._following: set[asyncio.Task[None]] = set()  # transactions sent again
        # Told (hash, sender, nonce, bytes) of each transaction before it is broadcast:
        # log, then act, so that after a crash its owner knows what it may have sent.
        self.before_broadcast: Callable[[bytes, Address, int, bytes], Awaitable[None]] | None
        self.before_broadcast = None

    @property
    @abstractmethod
    def w3(self) -> AsyncWeb3[Any]: ...

    @property
    @abstractmethod
    def chain_id(self) -> int: ...

    @property
    @abstractmethod
    def description(self) -> str: ...

    async def resend_dropped(self, fork: int) -> None:
        """Send again, byte for byte, our transactions that blocks after `fork` held and
        the chain no longer does: what we asked of the chain still happens, once."""
        refused: list[tuple[bytes, Exception]] = []
        for tx_hash, tx in self._sent.possibly_dropped(fork):
            if await self._mined_in(tx_hash) is not None:
                continue
            async with self._send_locks.setdefault(tx.sender, asyncio.Lock()):
                try:
                    await self.w3.eth.send_raw_transaction(tx.raw)
                    log.info("%s: sent 0x%s again", self.description, tx_hash.hex())
                    self._follow_to_receipt(tx_hash)
                except LedgerUnavailable:
                    raise
                except Exception as exc:
                    # Another follower of this ledger may have sent it again first.
                    text = str(exc).lower()
                    sent = any(words in text for words in _ALREADY_SENT)
                    if not sent and await self._mined_in(tx_hash) is None:
                        refused.append((tx_hash, exc))
        for tx_hash, refusal in refused:
            # Another transaction of the sender took the nonce in the new chain: what
            # was asked goes once more under a new one, as for one replaced in the pool.
            why: Exception = refusal
            try:
                successor = await self._sent_instead(tx_hash)
            except LedgerUnavailable:
                raise
            except LedgerError as exc:
                successor, why = None, exc
            if successor is None:
                log.warning("%s: cannot send 0x%s again: %s", self.description, tx_hash.hex(), why)
            else:
                self._follow_to_receipt(successor)
        # The chain's count of our senders' nonces may have gone back (a dropped
        # transaction we no longer hold): ask it again rather than leave a gap.
        self._nonces.clear()

    def _follow_to_receipt(self, tx_hash: bytes) -> None:
        """Wait for a transaction sent again as its sender's caller once did: until it is
        mined, sending it once more should another transaction take its nonce."""
        task = asyncio.ensure_future(self._followed(tx_hash))
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    async def _followed(self, tx_hash: bytes) -> None:
        try:
            await self.wait_for_receipt(tx_hash, timeout=_RESENT_FOLLOWED_S)
        except LedgerError as exc:
            log.warning(
                "%s: 0x%s, sent again, is not mined: %s", self.description, tx_hash.hex(), exc
            )

    async def _stop_following(self) -> None:
        tasks = list(self._following)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _mined_in(self, tx_hash: bytes) -> int | None:
        try:
            raw = await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        if raw is None or raw.get("blockNumber") is None:
            return None
        self._sent.mined(tx_hash, int(raw["blockNumber"]))
        return int(raw["blockNumber"])

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
        intent = Intent(signer, to, data, gas, value)
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
                if self.before_broadcast is not None:
                    await self.before_broadcast(keccak256(raw), sender, nonce, raw)
                try:
                    tx_hash = bytes(await self.w3.eth.send_raw_transaction(raw))
                except Exception as exc:
                    # The node may know a different nonce: another process uses the key.
                    self._nonces.pop(sender, None)
                    text = str(exc)
                    if any(words in text.lower() for words in _ALREADY_SENT):
                        self._nonces[sender] = nonce + 1
                        self._sent.sent(keccak256(raw), sender, nonce, raw, intent)
                        return keccak256(raw)  # this very transaction: sent before
                    if any(words in text.lower() for words in _NONCE_TAKEN) and not last_try:
                        # Senders that took each other's nonce would race again in step,
                        # the same one losing each time: a random pause breaks the step.
                        first, longest = _NONCE_PAUSE_S
                        pause = min(first * 2**attempt, longest)
                        await asyncio.sleep(random.uniform(0, pause))
                        continue
                    if any(words in text.lower() for words in _CANNOT_PAY):
                        raise InsufficientFunds(
                            f"{self.description}: {sender} cannot pay value and gas: {text}"
                        ) from exc
                    raise LedgerError(f"{self.description}: transaction refused: {text}") from exc
                self._nonces[sender] = nonce + 1
                self._sent.sent(tx_hash, sender, nonce, raw, intent)
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
        next_check = time.monotonic() + _REPLACED_CHECK_S
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
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + _REPLACED_CHECK_S
                try:
                    successor = await self._sent_instead(tx_hash)
                except LedgerUnavailable:
                    successor = None  # the node went away meanwhile: asked again next time
                if successor is not None:
                    tx_hash = successor
                    continue
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

    async def _sent_instead(self, tx_hash: bytes) -> bytes | None:
        """What was sent in place of our `tx_hash` once another transaction took its
        nonce (see the module docstring); None while it may still be mined."""
        async with self._replacing:
            known = self._sent.successor(tx_hash)
            if known is not None:
                return known
            sent = self._sent.get(tx_hash)
            if sent is None or sent.intent is None:
                return None  # not ours, or not ours to repeat
            mined = int(await self.w3.eth.get_transaction_count(sent.sender.checksum, "latest"))
            if mined <= sent.nonce or await self._mined_in(tx_hash) is not None:
                return None
            intent = sent.intent
            log.warning(
                "%s: 0x%s lost its nonce %d to another transaction of %s: sending it again",
                self.description,
                tx_hash.hex(),
                sent.nonce,
                sent.sender,
            )
            self._nonces.pop(sent.sender, None)
            # Tried once only: a send that fails may still have reached the node, and a
            # second try could make the intent happen twice.
            self._sent.forget(tx_hash)
            successor = await self.send(
                intent.signer, intent.to, intent.data, gas=intent.gas, value=intent.value
            )
            self._sent.replaced(tx_hash, successor)
            return successor
