"""The metered escrow through a node: a deposit for a seller at a price per unit, released
by the seller's meter's signed final reading, or refunded after its deadline.

`sign_meter_reading` is the meter's side: its EIP-712 signature over its final reading
for one escrow, in the escrow contract's domain, which a seller then claims with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from m2mpay.client.base import ApiBase, address_text, decode_items, given, given_amounts, path_id
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import Address, Eip712Domain, PrivateKey
from m2mpay.crypto.eip712 import PROTOCOL_NAME, PROTOCOL_VERSION, meter_reading_digest

__all__ = ["EscrowApi", "EscrowOutcomeView", "EscrowView", "sign_meter_reading"]


@dataclass(frozen=True, slots=True)
class EscrowOutcomeView:
    reading: Amount | None  # None: refunded
    paid: Amount  # to the seller
    refunded: Amount  # to the buyer
    tx_hash: str
    block: int


@dataclass(frozen=True, slots=True)
class EscrowView:
    """An escrow this node is party to, and what may be done with it now."""

    escrow_id: str
    state: Literal["open", "claimed", "refunded"]
    role: Literal["buyer", "seller", "none"]
    buyer: Address
    seller: Address
    meter: Address
    asset: Address
    price: Amount
    deposit: Amount
    max_reading: Amount
    deadline: int  # chain time, epoch s
    nonce: Amount
    actions: tuple[Literal["claim", "refund"], ...]
    outcome: EscrowOutcomeView | None


def sign_meter_reading(
    meter: PrivateKey, chain_id: int, escrow_contract: Address, escrow_id: str, reading: int
) -> str:
    """The meter's signature (0x-hex) over its final `reading` for the escrow `escrow_id`
    of the contract `escrow_contract` on chain `chain_id` (`/v1/info` names both)."""
    domain = Eip712Domain(PROTOCOL_NAME, PROTOCOL_VERSION, chain_id, escrow_contract)
    escrow = bytes.fromhex(escrow_id.removeprefix("0x").removeprefix("0X"))
    return "0x" + meter.sign_digest(meter_reading_digest(domain, escrow, reading)).hex()


class EscrowApi(ApiBase):
    async def open_escrow(
        self,
        seller: Address | str,
        meter: Address | str,
        *,
        price: int,
        deposit: int,
        timeout_s: int,
        asset: Address | str | None = None,
        nonce: int | None = None,
    ) -> EscrowView:
        """Deposit `deposit` for `seller` at `price` a unit, released by `meter`'s signed
        reading until `timeout_s` of chain time has passed, refundable after."""
        body: dict[str, Any] = {
            "seller": address_text(seller),
            "meter": address_text(meter),
            "price": str(price),
            "deposit": str(deposit),
            "timeout_s": timeout_s,
            **given(asset=asset),
            **given_amounts(nonce=nonce),
        }
        return decode(EscrowView, await self._call("POST", "/v1/escrows", body=body))

    async def escrows(self) -> list[EscrowView]:
        """The escrows this node is buyer or seller of, oldest first."""
        return decode_items(EscrowView, await self._call("GET", "/v1/escrows"), "escrows")

    async def escrow(self, escrow_id: str | bytes) -> EscrowView:
        return decode(EscrowView, await self._call("GET", f"/v1/escrows/{path_id(escrow_id)}"))

    async def claim_escrow(
        self, escrow_id: str | bytes, reading: int, signature: str | bytes
    ) -> EscrowView:
        """Claim with the meter's signed final `reading`: reading x price to the seller."""
        body = {
            "reading": str(reading),
            "signature": signature if isinstance(signature, str) else "0x" + signature.hex(),
        }
        raw = await self._call("POST", f"/v1/escrows/{path_id(escrow_id)}/claim", body=body)
        return decode(EscrowView, raw)

    async def refund_escrow(self, escrow_id: str | bytes) -> EscrowView:
        """After the deadline with no claim: the deposit back to the buyer."""
        raw = await self._call("POST", f"/v1/escrows/{path_id(escrow_id)}/refund")
        return decode(EscrowView, raw)
