"""x402's `exact` scheme on EVM with the seller as its own facilitator.

The payer signs an EIP-3009 `transferWithAuthorization` of the price to the seller on
the project's token; the seller checks it offline (`check_exact`: signature, validity
window, amount, payee, asset, chain), then against its book and the chain (nonce never
seen, never used, the payer's balance), records it durably (`NonceBook`), sends it
with its own key (paying the gas), waits for the receipt, marks it settled and only
then lets the request through. `start` reconciles what a crash left between the record
and the mark, from the token's `authorizationState`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from m2mpay.access.nonce_book import NonceBook
from m2mpay.access.pricing import Purchase
from m2mpay.access.schemes import Verified
from m2mpay.access.x402_wire import (
    PaymentPayload,
    PaymentRefused,
    PaymentRequirements,
    ResourceInfo,
    SettleResponse,
    check_exact,
)
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.token import TokenContract
from m2mpay.crypto import Eip712Domain, PrivateKey, Signature, TransferAuthorization
from m2mpay.errors import TransactionReverted

__all__ = ["EXACT", "ExactEvm", "Reconciled"]

EXACT: Final = "exact"
NONCE_USED: Final = "invalid_exact_evm_nonce_already_used"
# x402's name since its 2.17 (the official package's ERR_INSUFFICIENT_BALANCE), which
# renamed the older `insufficient_funds` for the `exact` scheme on EVM.
INSUFFICIENT_BALANCE: Final = "invalid_exact_evm_insufficient_balance"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What `start` found of a crash: authorizations used on chain (marked settled, never
    served) and those never sent (forgotten: nothing was charged)."""

    settled: int
    forgotten: int


@dataclass(frozen=True, slots=True)
class _Signed:
    authorization: TransferAuthorization
    signature: Signature


class ExactEvm:
    """The `exact` scheme for payments to `seller` in `token` on `ledger`."""

    def __init__(
        self,
        ledger: Ledger,
        token: TokenContract,
        seller: PrivateKey,
        book: NonceBook,
        *,
        max_timeout_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._token = token
        self._seller = seller
        self._book = book
        self._timeout = max_timeout_seconds
        self._clock = clock
        self._domain: Eip712Domain | None = None

    @property
    def name(self) -> str:
        return EXACT

    async def start(self) -> Reconciled:
        """Open the book, learn the token's EIP-712 domain and reconcile the crash's leftovers."""
        await self._book.open()
        self._domain = await self._token.domain()
        settled = forgotten = 0
        for booked in await self._book.unsettled():
            auth = booked.authorization
            if await self._token.authorization_used(auth.sender, auth.nonce):
                await self._book.settled(auth.sender, auth.nonce, "")
                settled += 1
            else:
                await self._book.forget(auth.sender, auth.nonce)
                forgotten += 1
        if settled or forgotten:
            _log.warning(
                "paywall: a crash left %d payments settled on chain but never served, "
                "%d never sent (nothing charged)",
                settled,
                forgotten,
            )
        return Reconciled(settled, forgotten)

    async def stop(self) -> None:
        await self._book.close()

    @property
    def domain(self) -> Eip712Domain:
        if self._domain is None:
            raise RuntimeError("the exact scheme is not started")
        return self._domain

    def requirements(self, resource: ResourceInfo, purchase: Purchase) -> PaymentRequirements:
        # `extra` names the token's EIP-712 domain, as x402 clients sign in it.
        return PaymentRequirements(
            scheme=EXACT,
            network=self._ledger.caip2,
            asset=self._token.address.checksum,
            amount=str(purchase.amount),
            pay_to=self._seller.address.checksum,
            max_timeout_seconds=self._timeout,
            extra={"name": self.domain.name, "version": self.domain.version},
        )

    async def verify(self, payment: PaymentPayload, requirements: PaymentRequirements) -> Verified:
        authorization, signature = check_exact(
            requirements, payment, self.domain, int(self._clock())
        )
        payer, nonce = authorization.sender, authorization.nonce
        if await self._book.knows(payer, nonce) or await self._token.authorization_used(
            payer, nonce
        ):
            raise PaymentRefused(NONCE_USED, "this authorization was used already")
        if await self._token.balance_of(payer) < authorization.value:
            raise PaymentRefused(INSUFFICIENT_BALANCE, "the payer's balance is below the price")
        resource = payment.resource.url if payment.resource else ""
        return Verified(
            payer, authorization.value, requirements, resource, _Signed(authorization, signature)
        )

    async def settle(self, verified: Verified) -> SettleResponse:
        signed = verified.proof
        assert isinstance(signed, _Signed)
        auth = signed.authorization
        if not await self._book.record(auth, signed.signature, verified.resource):
            raise PaymentRefused(NONCE_USED, "this authorization is used or being used")
        try:
            receipt = await self._token.transfer_with_authorization(
                self._seller, auth, signed.signature
            )
        except TransactionReverted as exc:
            await self._book.forget(auth.sender, auth.nonce)
            raise PaymentRefused("transaction_failed", f"the token refused it: {exc}") from None
        tx_hash = "0x" + receipt.tx_hash.hex()
        await self._book.settled(auth.sender, auth.nonce, tx_hash)
        return SettleResponse(
            success=True,
            transaction=tx_hash,
            network=self._ledger.caip2,
            payer=auth.sender.checksum,
            amount=str(auth.value),
        )
