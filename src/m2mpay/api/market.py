"""What the market's routes share: the deployment's market contracts, assets checked
before anything is sent, the chain's deadline, and the contracts' refusals as the API's
error shape with a stable code and the contract's own reason.

Bad input is refused before a transaction exists (422 naming the field, or 409 for
what the chain's state refuses: a pool that lacks shares, a deadline past); what the
exchange would still refuse is found by running the transaction as a call first
(`Exchange(preflight=True)`), so a refusal moves nothing: the most it leaves behind is
the exchange's allowance, given by permit (or approve) just before the call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.chain import NATIVE_TOKEN, MarketContracts
from m2mpay.crypto import Address
from m2mpay.errors import CryptoError, TransactionReverted

__all__ = [
    "REVERT_CODES",
    "chain_deadline",
    "contract_refusals",
    "known_asset",
    "market_of",
    "parse_address",
]

# The contracts' reasons (after "Exchange: " or "TokenFactory: ") → status and code.
REVERT_CODES: Final[dict[str, tuple[int, str]]] = {
    "output below minimum": (409, "slippage"),
    "shares below minimum": (409, "slippage"),
    "deadline passed": (409, "deadline_passed"),
    "not enough shares": (409, "insufficient_shares"),
    "no such pool": (404, "no_pool"),
    "identical tokens": (422, "same_asset"),
    "zero amount": (422, "invalid_amount"),
    "amount too large": (422, "amount_too_large"),
    "reserve overflow": (422, "amount_too_large"),
    "output is zero": (422, "amount_too_small"),
    "deposit buys no shares": (422, "amount_too_small"),
    "initial liquidity too small": (422, "amount_too_small"),
    "token takes a fee on transfer": (422, "fee_on_transfer"),
    "token is not a contract": (422, "unknown_token"),
    "token transfer failed": (409, "token_transfer_failed"),
    "supply to zero holder": (422, "invalid_input"),
    "empty name": (422, "invalid_input"),
    "empty symbol": (422, "invalid_input"),
    "decimals above 77": (422, "invalid_input"),
}


def market_of(gw: Gateway) -> MarketContracts:
    """The deployment's market contracts; 409 `no_market` if it was made without them."""
    if gw.deployment.market is None:
        raise ApiError(
            409,
            "no_market",
            f"the deployment on {gw.ledger.caip2} has no token factory or exchange",
        )
    return gw.deployment.market


def parse_address(text: str, field: str) -> Address:
    """An address from a request (the schema checked its form; the checksum is ours)."""
    try:
        return Address(text)
    except CryptoError as exc:
        raise ApiError(422, "invalid_input", f"{field}: {exc}", field) from None


async def known_asset(gw: Gateway, text: str, field: str) -> Address:
    """The native coin, or a contract on this chain: an address without code is refused
    here, not found later by a transaction that reverts."""
    asset = parse_address(text, field)
    if asset != NATIVE_TOKEN and not await gw.ledger.code(asset):
        raise ApiError(422, "unknown_token", f"no token contract at {asset.checksum}", field)
    return asset


async def chain_deadline(gw: Gateway, deadline_s: int, deadline: int | None) -> int:
    """The block timestamp after which the exchange refuses: `deadline` if given, else
    `deadline_s` after the latest block's; one already past is refused here."""
    now = await gw.ledger.block_timestamp()
    if deadline is None:
        return now + deadline_s
    if deadline < now:
        raise ApiError(
            409,
            "deadline_passed",
            f"the deadline {deadline} is before the chain's latest block ({now})",
            "deadline",
        )
    return deadline


@contextmanager
def contract_refusals(fields: dict[str, str] | None = None) -> Iterator[None]:
    """A contract's refusal as an `ApiError`: its code from `REVERT_CODES` (else
    `transaction_reverted`), its reason as the message, and the field `fields` names
    for that code, if any."""
    try:
        yield
    except TransactionReverted as exc:
        reason = exc.reason or "reverted without a reason"
        _, _, bare = reason.partition(": ")
        status, code = REVERT_CODES.get(bare or reason, (409, "transaction_reverted"))
        raise ApiError(status, code, reason, (fields or {}).get(code)) from None
