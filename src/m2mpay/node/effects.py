"""Carrying out the transactions the channel machine asks for: the only place a
channel transaction is built and sent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from m2mpay.chain.hub import NATIVE_TOKEN, ChannelHub, Closing, OnchainChannel
from m2mpay.chain.ledger import Receipt
from m2mpay.chain.token import TokenContract
from m2mpay.channel.messages import ChannelTerms
from m2mpay.channel.outputs import (
    ChallengeTx,
    CloseTx,
    CooperativeCloseTx,
    DepositTx,
    OpenTx,
    SettleTx,
    TxRequest,
)
from m2mpay.channel.state import OnchainClose
from m2mpay.crypto import Address, PrivateKey, Signature
from m2mpay.errors import LedgerUnavailable, TransactionReverted

__all__ = ["Funder", "execute", "resending"]

log = logging.getLogger("m2mpay.node")

_PERMIT_VALIDITY_S: Final = 3600
_CHAIN_TIME_TTL_S: Final = 5.0
# Transactions that only end a channel: sending one again is harmless (the chain
# refuses a second), so one the chain could not be reached for is sent again once it
# can, instead of failing a close for a moment's outage (a device's host restarting).
_RESENT_KINDS: Final = frozenset({"cooperative_close", "close", "challenge", "settle"})
_RESEND_FOR_S: Final = 30.0
_RESEND_BACKOFF_S: Final = (0.1, 2.0)


def _onchain(terms: ChannelTerms, deposit_a: int, deposit_b: int) -> OnchainChannel:
    return OnchainChannel(
        terms.a, terms.b, terms.asset, terms.challenge_period, terms.nonce, deposit_a, deposit_b
    )


def _closing(closing: OnchainClose) -> Closing:
    return Closing(closing.deadline, closing.transferred_a, closing.transferred_b)


class Funder:
    """Pays the node's deposits: token deposits carry an EIP-2612 permit, so each
    funding is one transaction.

    Funding transactions run one at a time: each permit is signed for the owner's
    next permit nonce, which only the previous funding, once mined, moves on. The
    nonce is tracked here after one read, and read again after any failure.
    """

    def __init__(self, hub: ChannelHub, key: PrivateKey) -> None:
        self._hub = hub
        self._key = key
        self._lock = asyncio.Lock()
        self._nonces: dict[Address, int] = {}
        self._tokens: dict[Address, TokenContract] = {}
        self._chain_time = 0
        self._chain_time_read_at = -_CHAIN_TIME_TTL_S

    def saw_chain_time(self, timestamp: int) -> None:
        """The node's ticker reports the chain clock, saving a read per permit."""
        self._chain_time = max(self._chain_time, timestamp)
        self._chain_time_read_at = time.monotonic()

    async def _now_on_chain(self) -> int:
        if time.monotonic() - self._chain_time_read_at > _CHAIN_TIME_TTL_S:
            self.saw_chain_time(await self._hub.ledger.block_timestamp())
        # A dev chain's clock may have been moved ahead of the wall clock, and a
        # quiet chain's last block may be behind it: take whichever is later.
        return max(self._chain_time, int(time.time()))

    async def open(self, channel: OnchainChannel) -> Receipt:
        async with self._lock:

            def send(permit: Signature | None, deadline: int) -> Awaitable[Receipt]:
                return self._hub.open(self._key, channel, permit=permit, permit_deadline=deadline)

            return await self._with_permit(channel.token, channel.deposit_a, send)

    async def deposit(self, channel: OnchainChannel, participant: Address, amount: int) -> Receipt:
        async with self._lock:

            def send(permit: Signature | None, deadline: int) -> Awaitable[Receipt]:
                return self._hub.deposit(
                    self._key, channel, participant, amount, permit=permit, permit_deadline=deadline
                )

            return await self._with_permit(channel.token, amount, send)

    async def _with_permit(
        self,
        asset: Address,
        amount: int,
        send: Callable[[Signature | None, int], Awaitable[Receipt]],
    ) -> Receipt:
        permit, deadline = await self._permit(asset, amount)
        try:
            return await self._funded(asset, send(permit, deadline))
        except TransactionReverted as exc:
            if "permit expired" not in str(exc):
                raise
        # The chain's clock went past the one read a moment ago: a dev chain's clock
        # moved ahead (advance_time). Read it now and sign again, once.
        self.saw_chain_time(await self._hub.ledger.block_timestamp())
        permit, deadline = await self._permit(asset, amount)
        return await self._funded(asset, send(permit, deadline))

    async def _permit(self, asset: Address, amount: int) -> tuple[Signature | None, int]:
        if asset == NATIVE_TOKEN:
            return None, 0
        token = self._tokens.get(asset)
        if token is None:
            token = self._tokens[asset] = TokenContract(self._hub.ledger, asset)
        nonce = self._nonces.get(asset)
        if nonce is None:
            nonce = await token.nonce(self._key.address)
        deadline = await self._now_on_chain() + _PERMIT_VALIDITY_S
        signature = await token.sign_permit(
            self._key, self._hub.address, amount, deadline, nonce=nonce
        )
        self._nonces[asset] = nonce
        return signature, deadline

    async def _funded(self, asset: Address, sending: Awaitable[Receipt]) -> Receipt:
        try:
            receipt = await sending
        except BaseException:
            self._nonces.pop(asset, None)
            raise
        if asset in self._nonces:
            self._nonces[asset] += 1
        return receipt


async def execute(hub: ChannelHub, key: PrivateKey, tx: TxRequest, funder: Funder) -> Receipt:
    """Send the transaction `tx` describes, signed by `key`; raises `LedgerError` subclasses."""
    if isinstance(tx, OpenTx):
        return await funder.open(_onchain(tx.terms, tx.terms.deposit_a, 0))
    channel = _onchain(tx.terms, tx.deposit_a, tx.deposit_b)
    if isinstance(tx, DepositTx):
        return await funder.deposit(channel, tx.participant, tx.amount)
    if isinstance(tx, CooperativeCloseTx):
        return await hub.cooperative_close(
            key, channel, tx.balance_a, tx.balance_b, tx.signature_a, tx.signature_b
        )
    if isinstance(tx, CloseTx):
        return await hub.close(key, channel, tx.transferred_a, tx.transferred_b, tx.peer_proof)
    if isinstance(tx, ChallengeTx):
        return await hub.challenge(
            key, channel, _closing(tx.closing), tx.participant, tx.transferred, tx.proof
        )
    if isinstance(tx, SettleTx):
        return await hub.settle(key, channel, _closing(tx.closing))
    raise TypeError(f"unknown transaction request {tx!r}")


async def resending(
    kind: str, send: Callable[[], Awaitable[None]], running: Callable[[], bool]
) -> None:
    """`send()` a transaction of `kind`; one that ends a channel is sent again while the
    chain cannot be reached (for up to `_RESEND_FOR_S`, and while `running()`)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _RESEND_FOR_S
    delay, longest = _RESEND_BACKOFF_S
    while True:
        try:
            await send()
            return
        except LedgerUnavailable as exc:
            if kind not in _RESENT_KINDS or not running() or loop.time() > give_up:
                raise
            log.info("%s transaction waits for the chain: %s", kind, exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, longest)
