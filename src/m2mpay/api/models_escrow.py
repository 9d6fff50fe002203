"""The bodies of the escrow routes (`m2mpay.api.routes_escrow`): a buyer's deposit in the
metered escrow, released by the seller's meter's signed final reading or refunded after
its deadline."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from m2mpay.api.models import Address, Amount, Hex32, PositiveAmount

__all__ = [
    "MAX_TIMEOUT_S",
    "EscrowClaim",
    "EscrowCreate",
    "EscrowList",
    "EscrowOutcomeView",
    "EscrowView",
]

# The contract refuses a deadline further out than a year (a typo that would lock it).
MAX_TIMEOUT_S = 31_536_000

SignatureHex = Annotated[
    str,
    Field(
        pattern=r"^0[xX][0-9a-fA-F]{130}$",
        description="65 bytes r || s || v (v 27 or 28, s in the lower half), 0x-hex.",
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as every request of models.py


class EscrowCreate(_Request):
    seller: Address = Field(description="Who is paid reading x price by a claim.")
    meter: Address = Field(description="The key whose signed final reading releases it.")
    price: PositiveAmount = Field(description="Per unit of the reading.")
    deposit: PositiveAmount = Field(description="The most this node pays; at least one unit.")
    timeout_s: int = Field(
        ge=1,
        le=MAX_TIMEOUT_S,
        description="Seconds of chain time the seller may claim in; a refund after that.",
    )
    asset: Address | None = Field(
        None, description="The token paid in (0x000…0: the native coin); default the node's."
    )
    nonce: Amount | None = Field(
        None, description="Tells apart escrows of the same terms; default: a random one."
    )


class EscrowClaim(_Request):
    reading: Amount = Field(
        description="The meter's final reading in units, at most deposit / price."
    )
    signature: SignatureHex = Field(
        description="The meter's EIP-712 `MeterReading(escrowId, reading)` signature, in the "
        "escrow contract's domain (name m2mpay, version 1)."
    )


class EscrowOutcomeView(BaseModel):
    reading: Amount | None = Field(description="The claimed reading; null for a refund.")
    paid: Amount = Field(description="To the seller.")
    refunded: Amount = Field(description="To the buyer.")
    tx_hash: Hex32
    block: int


class EscrowView(BaseModel):
    escrow_id: Hex32 = Field(description="The hash of its terms, as the contract computes it.")
    state: Literal["open", "claimed", "refunded"]
    role: Literal["buyer", "seller", "none"] = Field(description="This node's part in it.")
    buyer: Address
    seller: Address
    meter: Address
    asset: Address = Field(description="0x000…0 for the native coin.")
    price: Amount = Field(description="Per unit.")
    deposit: Amount
    max_reading: Amount = Field(description="The largest reading a claim may carry.")
    deadline: int = Field(description="Chain time (epoch s): claims until then, refunds after.")
    nonce: Amount
    actions: list[Literal["claim", "refund"]] = Field(
        description="What may be done now: `claim` (with the meter's signed reading) until "
        "the deadline, `refund` (the deposit back to the buyer) after it."
    )
    outcome: EscrowOutcomeView | None = Field(description="How it ended; null while open.")


class EscrowList(BaseModel):
    escrows: list[EscrowView]
