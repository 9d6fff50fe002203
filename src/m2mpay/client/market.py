"""The market through a node: tokens its deployment's factory made (and new ones, made
with the node's key), and the exchange's pools, quotes, swaps and liquidity.

Assets are addresses, the chain's coin `NATIVE` (the zero address); amounts are
integers in each asset's smallest unit. A refusal is an `ApiRefusal` whose `code` says
why (`slippage`, `deadline_passed`, `insufficient_shares`, `no_pool`, `same_asset`,
`unknown_token`, `not_a_factory_token`, `no_market`, …) and whose message is the
contract's reason where the contract refused."""

from __future__ import annotations

from dataclasses import dataclass

from m2mpay.client.base import ApiBase, address_text, decode_items, given, given_amounts, path_id
from m2mpay.client.codec import Amount, decode
from m2mpay.crypto import Address

__all__ = [
    "LiquidityView",
    "MarketApi",
    "PoolView",
    "QuoteView",
    "SwapView",
    "TokenDetail",
    "TokenView",
]


@dataclass(frozen=True, slots=True)
class TokenView:
    """A token the deployment's factory made, as its creation event tells."""

    address: Address
    name: str
    symbol: str
    decimals: int
    supply: Amount  # made at creation, to `holder`
    creator: Address
    holder: Address
    mint_owner: Address | None  # None: no one may ever mint more
    block: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class TokenDetail:
    token: TokenView
    total_supply: Amount  # now, mints included
    balance: Amount  # the node's


@dataclass(frozen=True, slots=True)
class PoolView:
    """A pool: token0 is the chain's coin or the lower token address."""

    pool_id: str
    token0: Address
    token1: Address
    symbol0: str
    symbol1: str
    decimals0: int
    decimals1: int
    reserve0: Amount
    reserve1: Amount
    total_shares: Amount
    shares: Amount  # the node's
    price0: str  # whole token1 for one whole token0, a decimal
    price1: str  # whole token0 for one whole token1
    fee_bps: int


@dataclass(frozen=True, slots=True)
class QuoteView:
    sell: Address
    buy: Address
    amount_in: Amount
    amount_out: Amount  # what a swap of amount_in pays out now
    fee: Amount  # of amount_in, left to the pool's providers
    fee_bps: int
    price_impact_bps: int


@dataclass(frozen=True, slots=True)
class SwapView:
    sell: Address
    buy: Address
    amount_in: Amount
    amount_out: Amount  # what the node received
    min_out: Amount
    tx_hash: str
    block: int
    gas_used: int


@dataclass(frozen=True, slots=True)
class LiquidityView:
    """Liquidity added (amounts in, shares minted) or removed (amounts out, burned)."""

    pool_id: str
    asset_a: Address
    asset_b: Address
    amount_a: Amount
    amount_b: Amount
    shares: Amount
    shares_held: Amount  # the node's shares of the pool now
    tx_hash: str
    block: int
    gas_used: int


class MarketApi(ApiBase):
    # -- tokens

    async def tokens(self) -> list[TokenView]:
        """Every token the node's deployment's factory made, oldest first."""
        return decode_items(TokenView, await self._call("GET", "/v1/tokens"), "tokens")

    async def token(self, address: Address | str) -> TokenDetail:
        """One token the factory made, with its supply now and the node's balance."""
        path = f"/v1/tokens/{path_id(address_text(address))}"
        return decode(TokenDetail, await self._call("GET", path))

    async def create_token(
        self,
        name: str,
        symbol: str,
        *,
        decimals: int | None = None,
        supply: int | None = None,
        holder: Address | str | None = None,
        mintable: bool | None = None,
    ) -> TokenView:
        """Make a token with the node's key: `supply` (smallest units) to `holder` (the
        node when not given); with `mintable` the node may mint more later."""
        body = {
            "name": name,
            "symbol": symbol,
            **given(decimals=decimals, mintable=mintable),
            **given_amounts(supply=supply),
            **given(holder=holder),
        }
        return decode(TokenView, await self._call("POST", "/v1/tokens", body=body))

    # -- the exchange

    async def pools(self) -> list[PoolView]:
        return decode_items(PoolView, await self._call("GET", "/v1/dex/pools"), "pools")

    async def quote(self, sell: Address | str, buy: Address | str, amount: int) -> QuoteView:
        """What selling `amount` of `sell` for `buy` would pay out now."""
        params: dict[str, str | int] = {
            "sell": address_text(sell),
            "buy": address_text(buy),
            "amount": str(amount),
        }
        return decode(QuoteView, await self._call("GET", "/v1/dex/quote", params=params))

    async def swap(
        self,
        sell: Address | str,
        buy: Address | str,
        amount_in: int,
        *,
        min_out: int | None = None,
        slippage_bps: int | None = None,
        deadline_s: int | None = None,
        deadline: int | None = None,
    ) -> SwapView:
        """Sell exactly `amount_in` for at least `min_out` (or the quote less
        `slippage_bps`; the node's default 50 when neither is given)."""
        body = {
            "sell": address_text(sell),
            "buy": address_text(buy),
            "amount_in": str(amount_in),
            **given_amounts(min_out=min_out),
            **given(slippage_bps=slippage_bps, deadline_s=deadline_s, deadline=deadline),
        }
        return decode(SwapView, await self._call("POST", "/v1/dex/swaps", body=body))

    async def add_liquidity(
        self,
        asset_a: Address | str,
        asset_b: Address | str,
        amount_a: int,
        amount_b: int,
        *,
        min_shares: int | None = None,
        deadline_s: int | None = None,
        deadline: int | None = None,
    ) -> LiquidityView:
        """Deposit up to `amount_a` and `amount_b` at the pool's price (the first
        deposit sets it) for shares of it."""
        body = {
            "asset_a": address_text(asset_a),
            "asset_b": address_text(asset_b),
            "amount_a": str(amount_a),
            "amount_b": str(amount_b),
            **given_amounts(min_shares=min_shares),
            **given(deadline_s=deadline_s, deadline=deadline),
        }
        return decode(LiquidityView, await self._call("POST", "/v1/dex/liquidity", body=body))

    async def remove_liquidity(
        self,
        asset_a: Address | str,
        asset_b: Address | str,
        shares: int,
        *,
        min_a: int | None = None,
        min_b: int | None = None,
        deadline_s: int | None = None,
        deadline: int | None = None,
    ) -> LiquidityView:
        """Give back `shares` of the pool for their part of both reserves."""
        body = {
            "asset_a": address_text(asset_a),
            "asset_b": address_text(asset_b),
            "shares": str(shares),
            **given_amounts(min_a=min_a, min_b=min_b),
            **given(deadline_s=deadline_s, deadline=deadline),
        }
        path = "/v1/dex/liquidity/removals"
        return decode(LiquidityView, await self._call("POST", path, body=body))
