"""The metered escrow through the node: a buyer who will not open a channel deposits a
maximum for a seller at a price per unit, naming the seller's meter and a timeout; the
seller claims with the meter's EIP-712 signed final reading (reading x price to it, the
rest back to the buyer), or after the deadline the buyer takes its deposit back.

The contract keeps one word per escrow (its state) and its events carry the terms, so
the node keeps nothing of its own: what it lists is what the chain logged for its
address, as buyer or seller. A claim or a refund the contract refuses answers 409
`transaction_reverted` with the contract's reason, naming the field at fault where one is.
"""

from __future__ import annotations

import secrets
from typing import Final, Literal

from fastapi import APIRouter

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError, provided
from m2mpay.api.gateway import Gateway
from m2mpay.api.market import parse_address
from m2mpay.api.models import Hex32Path
from m2mpay.api.models_escrow import (
    EscrowClaim,
    EscrowCreate,
    EscrowList,
    EscrowOutcomeView,
    EscrowView,
)
from m2mpay.api.routes_info import require_funds, token_at
from m2mpay.api.views import hex32, parse_hex32
from m2mpay.chain.escrow import EscrowOutcome, EscrowState, EscrowTerms, MeteredEscrow
from m2mpay.chain.hub import NATIVE_TOKEN
from m2mpay.crypto import Address, Signature
from m2mpay.errors import CryptoError, TransactionReverted

__all__ = ["escrow_routes", "escrow_view"]

_STATES: Final[dict[EscrowState, Literal["open", "claimed", "refunded"]]] = {
    EscrowState.OPEN: "open",
    EscrowState.CLAIMED: "claimed",
    EscrowState.REFUNDED: "refunded",
}
# The contract's reasons that one request field is at fault for.
_FIELD_OF_REASON: Final = {
    "MeteredEscrow: reading not signed by the meter": "signature",
    "MeteredEscrow: invalid signature": "signature",
    "MeteredEscrow: reading above the deposit": "reading",
    "MeteredEscrow: buyer is the seller": "seller",
    "MeteredEscrow: deposit buys no unit": "deposit",
    "MeteredEscrow: escrow id already used": "nonce",
}


def _reverted(exc: TransactionReverted) -> ApiError:
    return ApiError(409, "transaction_reverted", exc.reason, _FIELD_OF_REASON.get(exc.reason))


def escrow_view(
    terms: EscrowTerms,
    me: Address,
    state: EscrowState,
    outcome: EscrowOutcome | None,
    now: int,
) -> EscrowView:
    actions: list[Literal["claim", "refund"]] = []
    if state == EscrowState.OPEN:
        actions.append("claim" if now <= terms.deadline else "refund")
    role: Literal["buyer", "seller", "none"] = (
        "buyer" if me == terms.buyer else "seller" if me == terms.seller else "none"
    )
    ended = None
    if outcome is not None:
        ended = EscrowOutcomeView(
            reading=None if outcome.reading is None else str(outcome.reading),
            paid=str(outcome.paid),
            refunded=str(outcome.refunded),
            tx_hash=hex32(outcome.tx_hash),
            block=outcome.block_number,
        )
    return EscrowView(
        escrow_id=hex32(terms.id),
        state=_STATES[state],
        role=role,
        buyer=terms.buyer.checksum,
        seller=terms.seller.checksum,
        meter=terms.meter.checksum,
        asset=terms.token.checksum,
        price=str(terms.price),
        deposit=str(terms.deposit),
        max_reading=str(terms.max_reading),
        deadline=terms.deadline,
        nonce=str(terms.nonce),
        actions=actions,
        outcome=ended,
    )


def _contract(gw: Gateway) -> MeteredEscrow:
    market = provided(
        gw.deployment.market, "no_escrow", "this node's deployment has no metered escrow"
    )
    return MeteredEscrow(gw.ledger, market.escrow)


async def _view_of(gw: Gateway, escrow: MeteredEscrow, terms: EscrowTerms) -> EscrowView:
    state = await escrow.state(terms.id)
    outcome = None if state == EscrowState.OPEN else await escrow.outcome(terms.id)
    now = await gw.ledger.block_timestamp()
    return escrow_view(terms, gw.node.address, state, outcome, now)


async def _terms_of(escrow: MeteredEscrow, escrow_id: str) -> EscrowTerms:
    wanted = parse_hex32(escrow_id, "escrow_id")
    found = await escrow.opened(escrow=wanted)
    if not found:
        raise ApiError(404, "unknown_escrow", f"no escrow {escrow_id}")
    return found[0]


def escrow_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "escrows")

    @routes.write(
        "/v1/escrows",
        EscrowView,
        status_code=201,
        summary="Deposit a maximum for a seller, released by its meter's signed reading",
        description="Opens an escrow in the metered escrow contract with this node as the "
        "buyer: the deposit leaves the node's wallet now (a permit token in one "
        "transaction). Until `timeout_s` has passed on the chain the seller may claim with "
        "the meter's signed final reading; after it, this node may take the deposit back.",
    )
    async def open_escrow(body: EscrowCreate) -> EscrowView:
        escrow = _contract(gw)
        asset = gw.deployment.token if body.asset is None else parse_address(body.asset, "asset")
        deposit = int(body.deposit)
        if asset != NATIVE_TOKEN:
            await token_at(gw, asset)
        await require_funds(gw, asset, deposit, "deposit")
        now = await gw.ledger.block_timestamp()
        terms = EscrowTerms(
            buyer=gw.node.address,
            seller=parse_address(body.seller, "seller"),
            meter=parse_address(body.meter, "meter"),
            token=asset,
            price=int(body.price),
            deposit=deposit,
            deadline=now + body.timeout_s,
            nonce=secrets.randbits(64) if body.nonce is None else int(body.nonce),
        )
        try:
            await escrow.open(gw.node.key, terms)
        except TransactionReverted as exc:
            raise _reverted(exc) from None
        return await _view_of(gw, escrow, terms)

    @routes.read("/v1/escrows", EscrowList, summary="The escrows this node is buyer or seller of")
    async def list_escrows() -> EscrowList:
        escrow = _contract(gw)
        me = gw.node.address
        bought = await escrow.opened(buyer=me)
        sold = [t for t in await escrow.opened(seller=me) if t.buyer != me]
        return EscrowList(escrows=[await _view_of(gw, escrow, t) for t in (*bought, *sold)])

    @routes.read("/v1/escrows/{escrow_id}", EscrowView, summary="One escrow: terms, state, actions")
    async def show_escrow(escrow_id: Hex32Path) -> EscrowView:
        escrow = _contract(gw)
        return await _view_of(gw, escrow, await _terms_of(escrow, escrow_id))

    @routes.write(
        "/v1/escrows/{escrow_id}/claim",
        EscrowView,
        summary="Claim with the meter's signed final reading: reading x price to the seller",
        description="Anyone may send it (this node pays the gas); the rest of the deposit "
        "goes back to the buyer in the same transaction. Refused by the contract: a reading "
        "not signed by the escrow's meter, above deposit / price, after the deadline, or "
        "for an escrow already claimed or refunded.",
    )
    async def claim(escrow_id: Hex32Path, body: EscrowClaim) -> EscrowView:
        escrow = _contract(gw)
        terms = await _terms_of(escrow, escrow_id)
        try:
            signature = Signature(body.signature)
        except CryptoError as exc:
            raise ApiError(422, "invalid_input", f"signature: {exc}", "signature") from None
        reading = int(body.reading)
        try:
            await escrow.claim(gw.node.key, terms, reading, signature)
        except TransactionReverted as exc:
            raise _reverted(exc) from None
        return await _view_of(gw, escrow, terms)

    @routes.write(
        "/v1/escrows/{escrow_id}/refund",
        EscrowView,
        summary="After the deadline with no claim: the whole deposit back to the buyer",
    )
    async def refund(escrow_id: Hex32Path) -> EscrowView:
        escrow = _contract(gw)
        terms = await _terms_of(escrow, escrow_id)
        try:
            await escrow.refund(gw.node.key, terms)
        except TransactionReverted as exc:
            raise _reverted(exc) from None
        return await _view_of(gw, escrow, terms)

    return routes.router
