"""Binding of the Token contract (ERC-20 with EIP-2612 permit, EIP-3009 transfers by
signed authorization, and owner mint)."""

from __future__ import annotations

from typing import Final

from m2mpay.chain.binding import ContractBinding, deploy_binding
from m2mpay.chain.ledger import Ledger, Receipt
from m2mpay.crypto import (
    Address,
    Eip712Domain,
    PrivateKey,
    Signature,
    TransferAuthorization,
    permit_digest,
)
from m2mpay.crypto.eip712 import cancel_authorization_digest

__all__ = ["TOKEN_GAS", "TokenContract", "deploy_token"]

TOKEN_GAS: Final = {
    "deploy": 2_000_000,
    "transfer": 80_000,
    "approve": 70_000,
    "mint": 90_000,
    "permit": 100_000,
    "transferWithAuthorization": 100_000,
    "receiveWithAuthorization": 100_000,
    "cancelAuthorization": 70_000,
    "transfer_ownership": 50_000,
}


class TokenContract(ContractBinding):
    ARTIFACT = "Token"
    GAS = TOKEN_GAS

    def __init__(self, ledger: Ledger, address: Address) -> None:
        super().__init__(ledger, address)
        self._domain: Eip712Domain | None = None

    async def name(self) -> str:
        return str(await self._output("name"))

    async def symbol(self) -> str:
        return str(await self._output("symbol"))

    async def decimals(self) -> int:
        return int(await self._output("decimals"))

    async def total_supply(self) -> int:
        return int(await self._output("totalSupply"))

    async def balance_of(self, owner: Address) -> int:
        return int(await self._output("balanceOf", owner))

    async def allowance(self, owner: Address, spender: Address) -> int:
        return int(await self._output("allowance", owner, spender))

    async def nonce(self, owner: Address) -> int:
        return int(await self._output("nonces", owner))

    async def domain(self) -> Eip712Domain:
        """The token's EIP-712 domain (name, version "1", chain, address) for permits."""
        if self._domain is None:
            self._domain = Eip712Domain(await self.name(), "1", self.ledger.chain_id, self.address)
        return self._domain

    async def sign_permit(
        self,
        owner: PrivateKey,
        spender: Address,
        value: int,
        deadline: int,
        *,
        nonce: int | None = None,
    ) -> Signature:
        """An EIP-2612 permit letting `spender` take `value` of `owner`'s tokens.

        `nonce` is the owner's permit nonce; read from the token when not given.
        """
        if nonce is None:
            nonce = await self.nonce(owner.address)
        digest = permit_digest(await self.domain(), owner.address, spender, value, nonce, deadline)
        return owner.sign_digest(digest)

    async def sign_authorization(
        self, payer: PrivateKey, authorization: TransferAuthorization
    ) -> Signature:
        """The payer's EIP-3009 signature of `authorization` (its sender must be the payer)."""
        if authorization.sender != payer.address:
            raise ValueError("an authorization is signed by its sender")
        return payer.sign_digest(authorization.digest(await self.domain()))

    async def authorization_used(self, authorizer: Address, nonce: bytes) -> bool:
        """Whether `nonce` of `authorizer` was used or cancelled (EIP-3009)."""
        return bool(await self._output("authorizationState", authorizer, nonce))

    async def transfer_with_authorization(
        self, submitter: PrivateKey, authorization: TransferAuthorization, signature: Signature
    ) -> Receipt:
        """Submit a signed authorization, paying the gas: `transferWithAuthorization`, or
        `receiveWithAuthorization` for one of kind "receive" (the submitter must be its
        receiver)."""
        name = f"{authorization.kind}WithAuthorization"
        return await self._transact(
            submitter,
            name,
            authorization.sender,
            authorization.receiver,
            authorization.value,
            authorization.valid_after,
            authorization.valid_before,
            authorization.nonce,
            signature.v,
            signature.r,
            signature.s,
        )

    async def cancel_authorization(
        self, submitter: PrivateKey, authorizer: PrivateKey, nonce: bytes
    ) -> Receipt:
        """`authorizer` withdraws its unused authorization `nonce` (`submitter` pays)."""
        signature = authorizer.sign_digest(
            cancel_authorization_digest(await self.domain(), authorizer.address, nonce)
        )
        return await self._transact(
            submitter,
            "cancelAuthorization",
            authorizer.address,
            nonce,
            signature.v,
            signature.r,
            signature.s,
        )

    async def transfer(self, sender: PrivateKey, receiver: Address, amount: int) -> Receipt:
        return await self._transact(sender, "transfer", receiver, amount)

    async def approve(self, owner: PrivateKey, spender: Address, amount: int) -> Receipt:
        return await self._transact(owner, "approve", spender, amount)

    async def mint(self, owner: PrivateKey, receiver: Address, amount: int) -> Receipt:
        return await self._transact(owner, "mint", receiver, amount)

    async def permit(
        self,
        sender: PrivateKey,
        owner: Address,
        spender: Address,
        value: int,
        deadline: int,
        signature: Signature,
    ) -> Receipt:
        return await self._transact(
            sender,
            "permit",
            owner,
            spender,
            value,
            deadline,
            signature.v,
            signature.r,
            signature.s,
        )


async def deploy_token(
    ledger: Ledger, deployer: PrivateKey, name: str, symbol: str, decimals: int = 18
) -> tuple[TokenContract, Receipt]:
    return await deploy_binding(
        TokenContract, ledger, deployer, name, symbol, decimals, gas=TOKEN_GAS["deploy"]
    )
