"""The exchange's part of `m2mpay bench gas`: a swap, adding and removing liquidity."""

from __future__ import annotations

from typing import Final

from m2mpay.bench.rig import Progress
from m2mpay.chain.exchange import deploy_exchange
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.token import TokenContract, deploy_token
from m2mpay.crypto import PrivateKey

__all__ = ["measure_exchange_gas"]

_UNIT: Final = 10**18


async def measure_exchange_gas(
    ledger: Ledger,
    owner: PrivateKey,
    token: TokenContract,
    provider: PrivateKey,
    trader: PrivateKey,
    say: Progress | None = None,
) -> dict[str, int]:
    """Gas of a token/token swap and of adding and removing liquidity, in steady state:
    the pool exists, the trader holds both tokens and has an allowance left from before,
    the provider already holds shares. `provider` and `trader` hold `token`; `owner` can
    mint it."""
    if say is not None:
        say("exchange: a token/token swap, adding and removing liquidity")
    exchange, _ = await deploy_exchange(ledger, owner)
    light, _ = await deploy_token(ledger, owner, "IoT-Light", "LIGHT")
    for holder in (provider, trader):
        await light.mint(owner, holder.address, 1_000 * _UNIT)
        await token.mint(owner, holder.address, 1_000 * _UNIT)
        await light.approve(holder, exchange.address, 500 * _UNIT)
        await token.approve(holder, exchange.address, 500 * _UNIT)
    deadline = await ledger.block_timestamp() + 3600
    await exchange.add(provider, light.address, token.address, 100 * _UNIT, 100 * _UNIT, deadline)
    await exchange.swap(trader, token.address, light.address, _UNIT, 0, deadline)
    swapped = await exchange.swap(trader, token.address, light.address, _UNIT, 0, deadline)
    added = await exchange.add(provider, light.address, token.address, _UNIT, _UNIT, deadline)
    shares = await exchange.shares_of(light.address, token.address, provider.address)
    removed = await exchange.remove(provider, light.address, token.address, shares // 4, deadline)
    return {
        "swap": swapped.gas_used,
        "add_liquidity": added.gas_used,
        "remove_liquidity": removed.gas_used,
    }
