"""Binding of the Exchange contract: constant-product pools of token/ETH and token/token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from m2mpay.chain.binding import ContractBinding, deploy_binding
from m2mpay.chain.hub import NATIVE_TOKEN
from m2mpay.chain.ledger import Ledger, Receipt
from m2mpay.chain.market_events import ExchangeEvent, decode_exchange_event
from m2mpay.chain.token import TokenContract
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import TransactionReverted

__all__ = ["EXCHANGE_GAS", "FEE_BPS", "Exchange", "Pool", "deploy_exchange"]

# Explicit gas limits, so no transaction pays a round trip for estimation: about 1.5x the
# costliest case measured (`m2mpay bench gas`: a swap ~70,000 paying a new holder ~90,000;
# the deposit that creates a pool ~205,000 with ETH, more with two tokens).
EXCHANGE_GAS: Final = {
    "deploy": 3_000_000,
    "swap": 150_000,
    "swap_with_permit": 200_000,
    "add_liquidity": 350_000,
    "remove_liquidity": 200_000,
}
FEE_BPS: Final = 30  # the contract's 997/1000: 0.3 % of what is sold stays in the pool


@dataclass(frozen=True)
class Pool:
    """A pool's pair (token0 below token1; ETH, the zero address, first) and its state."""

    id: bytes
    token0: Address
    token1: Address
    reserve0: int
    reserve1: int
    total_shares: int


class Exchange(ContractBinding):
    """The exchange at `address`. With `preflight`, every transaction is first run as a
    call: what the contract would refuse raises `TransactionReverted` with its reason
    before the swap or deposit is sent, so a refusal moves nothing (the allowance the
    exchange needs is given first, by permit or approve, and stays)."""

    ARTIFACT = "Exchange"

    def __init__(self, ledger: Ledger, address: Address, *, preflight: bool = False) -> None:
        super().__init__(ledger, address)
        self.preflight = preflight

    async def _transact(self, signer: PrivateKey, name: str, *args: Any, value: int = 0) -> Receipt:
        data = self._abi.encode_call(name, *args)
        if self.preflight:
            await self.ledger.call(self.address, data, sender=signer.address, value=value)
        return await self.ledger.transact(
            signer, self.address, data, gas=EXCHANGE_GAS[name], value=value
        )

    def logged(self, receipt: Receipt) -> list[ExchangeEvent]:
        """The exchange's events a transaction logged, decoded."""
        return [
            event
            for log in receipt.logs
            if (event := decode_exchange_event(log, self.address)) is not None
        ]

    # -- views

    async def pool_id(self, token_a: Address, token_b: Address) -> bytes:
        return bytes(await self._output("pool_id", token_a, token_b))

    async def reserves(self, token_a: Address, token_b: Address) -> tuple[int, int, int]:
        """The reserves of `token_a` and `token_b` in their pool, and its total shares."""
        reserve_a, reserve_b, total = await self._outputs("reserves", token_a, token_b)
        return int(reserve_a), int(reserve_b), int(total)

    async def shares_of(self, token_a: Address, token_b: Address, provider: Address) -> int:
        pool = await self.pool_id(token_a, token_b)
        return int(await self._output("shares", pool, provider))

    async def quote(self, token_in: Address, token_out: Address, amount_in: int) -> int:
        """What swapping `amount_in` of `token_in` would pay out now (fee taken)."""
        return int(await self._output("quote", token_in, token_out, amount_in))

    async def pools(self) -> list[Pool]:
        """Every pool the exchange holds, in the order they were created."""
        count = int(await self._output("pool_count"))
        found = []
        for index in range(count):
            pool = bytes(await self._output("pool_ids", index))
            pair = await self._output("pairs", pool)
            token0, token1 = Address(pair[0]), Address(pair[1])
            reserve0, reserve1, total = await self.reserves(token0, token1)
            found.append(Pool(pool, token0, token1, reserve0, reserve1, total))
        return found

    async def events(self, from_block: int = 0) -> list[ExchangeEvent]:
        """Every pool creation, liquidity change and swap from `from_block` on, in chain
        order; each but a creation carries the pool's reserves after it."""
        logs = await self.ledger.get_logs(address=self.address, from_block=from_block)
        return [
            event for log in logs if (event := decode_exchange_event(log, self.address)) is not None
        ]

    # -- transactions

    async def _allow(self, owner: PrivateKey, token: Address, amount: int) -> None:
        """Make sure the exchange may take `amount` of `token`: by an EIP-2612 permit
        where the token has one (anyone may submit it, no approve from the owner's
        own history needed), else by approve."""
        if token == NATIVE_TOKEN:
            return
        erc20 = TokenContract(self.ledger, token)
        if await erc20.allowance(owner.address, self.address) >= amount:
            return
        try:
            deadline = await self.ledger.block_timestamp() + 3600
            signature = await erc20.sign_permit(owner, self.address, amount, deadline)
        except TransactionReverted:  # no `nonces`/`name`: not a permit token
            await erc20.approve(owner, self.address, amount)
            return
        await erc20.permit(owner, owner.address, self.address, amount, deadline, signature)

    async def swap(
        self,
        trader: PrivateKey,
        token_in: Address,
        token_out: Address,
        amount_in: int,
        min_out: int,
        deadline: int,
        *,
        receiver: Address | None = None,
        permit: bool = False,
    ) -> Receipt:
        """Swap exactly `amount_in` for at least `min_out`, paid to `receiver` (the trader).

        With `permit`, `token_in` must be an EIP-2612 token: its allowance is signed
        and given in the same transaction. Otherwise an allowance is made first when
        missing (ETH needs none).
        """
        to = receiver if receiver is not None else trader.address
        args = (token_in, token_out, amount_in, min_out, to, deadline)
        if permit:
            erc20 = TokenContract(self.ledger, token_in)
            signature = await erc20.sign_permit(trader, self.address, amount_in, deadline)
            sig = (signature.v, signature.r, signature.s)
            return await self._transact(trader, "swap_with_permit", *args, deadline, sig)
        await self._allow(trader, token_in, amount_in)
        value = amount_in if token_in == NATIVE_TOKEN else 0
        return await self._transact(trader, "swap", *args, value=value)

    async def add(
        self,
        provider: PrivateKey,
        token_a: Address,
        token_b: Address,
        max_a: int,
        max_b: int,
        deadline: int,
        *,
        min_shares: int = 0,
    ) -> Receipt:
        """Deposit up to `max_a` and `max_b` at the pool's price (the first deposit sets
        it); ETH not taken is sent back."""
        await self._allow(provider, token_a, max_a)
        await self._allow(provider, token_b, max_b)
        value = max_a if token_a == NATIVE_TOKEN else max_b if token_b == NATIVE_TOKEN else 0
        return await self._transact(
            provider,
            "add_liquidity",
            token_a,
            token_b,
            max_a,
            max_b,
            min_shares,
            deadline,
            value=value,
        )

    async def remove(
        self,
        provider: PrivateKey,
        token_a: Address,
        token_b: Address,
        shares: int,
        deadline: int,
        *,
        min_a: int = 0,
        min_b: int = 0,
    ) -> Receipt:
        """Give back `shares` of the pool for their part of both reserves."""
        return await self._transact(
            provider, "remove_liquidity", token_a, token_b, shares, min_a, min_b, deadline
        )


async def deploy_exchange(ledger: Ledger, deployer: PrivateKey) -> tuple[Exchange, Receipt]:
    return await deploy_binding(Exchange, ledger, deployer, gas=EXCHANGE_GAS["deploy"])
