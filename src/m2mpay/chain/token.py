"""Binding of the Token contract (ERC-20 with EIP-2612 permit and owner mint)."""

from __future__ import annotations

from typing import Any, Final

from m2mpay.chain.binding import ContractBinding, deploy_binding
from m2mpay.chain.ledger import Ledger, Receipt
from m2mpay.crypto import Address, Eip712Domain, PrivateKey, Signature, permit_digest

__all__ = ["TOKEN_GAS", "TokenContract", "deploy_token"]

TOKEN_GAS: Final = {
    "deploy": 2_000_000,
    "transfer": 80_000,
    "approve": 70_000,
    "mint": 90_000,
    "permit": 100_000,
    "transfer_ownership": 50_000,
}


class TokenContract(ContractBinding):
    ARTIFACT = "Token"

    def __init__(self, ledger: Ledger, address: Address) -> None:
        super().__init__(ledger, address)
        self._domain: Eip712Domain | None = None

    async def _view(self, name: str, *args: Any) -> Any:
        data = await self.ledger.call(self.address, self._abi.encode_call(name, *args))
        return self._abi.decode_output(name, data)[0]

    async def _transact(self, signer: PrivateKey, name: str, *args: Any) -> Receipt:
        return await self.ledger.transact(
            signer, self.address, self._abi.encode_call(name, *args), gas=TOKEN_GAS[name]
        )

    async def name(self) -> str:
        return str(await self._view("name"))

    async def symbol(self) -> str:
        return str(await self._view("symbol"))

    async def decimals(self) -> int:
        return int(await self._view("decimals"))

    async def total_supply(self) -> int:
        return int(await self._view("totalSupply"))

    async def balance_of(self, owner: Address) -> int:
        return int(await self._view("balanceOf", owner))

    async def allowance(self, owner: Address, spender: Address) -> int:
        return int(await self._view("allowance", owner, spender))

    async def nonce(self, owner: Address) -> int:
        return int(await self._view("nonces", owner))

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
