"""The exchange: its pools, a quote, a swap and liquidity, with the node's own key.

    GET  /v1/dex/pools                  every pool: reserves, shares, prices, fee
    GET  /v1/dex/quote?sell=&buy=&amount=  what a swap would pay out now
    POST /v1/dex/swaps                  sell exactly `amount_in` for at least a minimum
    POST /v1/dex/liquidity              deposit two assets for shares of their pool
    POST /v1/dex/liquidity/removals     give shares back for both assets

The native coin is the zero address. Before any transaction the node checks what it
can (assets, amounts, the pool, its shares and funds, the deadline, the quote against
the minimum) and then runs the transaction as a call, so that a refusal is the
contract's reason with a stable code (`m2mpay.api.market`) and nothing moves."""

from __future__ import annotations

from typing import Annotated, Final

from eth_abi.exceptions import DecodingError
from fastapi import APIRouter, Query

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.market import chain_deadline, contract_refusals, known_asset, market_of
from m2mpay.api.models import ADDRESS, AMOUNT
from m2mpay.api.models_market import (
    LiquidityAdd,
    LiquidityRemove,
    LiquidityView,
    PoolList,
    PoolView,
    QuoteView,
    SwapRequest,
    SwapView,
)
from m2mpay.api.routes_info import require_funds
from m2mpay.api.views import hex32
from m2mpay.chain import (
    NATIVE_TOKEN,
    Exchange,
    LiquidityAdded,
    LiquidityRemoved,
    Pool,
    Receipt,
    Swapped,
    TokenContract,
)
from m2mpay.chain.exchange import FEE_BPS
from m2mpay.crypto import UINT256_MAX, Address
from m2mpay.errors import ContractError, M2MPayError

__all__ = ["dex_routes"]

_DEFAULT_SLIPPAGE_BPS: Final = 50
_PRICE_PLACES: Final = 18
_NATIVE_DECIMALS: Final = 18
AssetQuery = Annotated[str, Query(pattern=ADDRESS, description="0x000…0 for the native coin.")]
AmountQuery = Annotated[
    str, Query(pattern=AMOUNT, description="Integer in the smallest unit of `sell`.")
]


def _ratio(numerator: int, denominator: int) -> str:
    """numerator / denominator as a decimal of at most 18 places, rounded down."""
    if denominator == 0:
        return "0"
    scaled = numerator * 10**_PRICE_PLACES // denominator
    whole, fraction = divmod(scaled, 10**_PRICE_PLACES)
    digits = str(fraction).rjust(_PRICE_PLACES, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def _price_impact_bps(amount_in: int, amount_out: int, reserve_in: int, reserve_out: int) -> int:
    """How far `amount_out` is below what the pool's price pays after the fee, in basis
    points rounded up."""
    ideal_numerator = amount_in * (10_000 - FEE_BPS) * reserve_out
    ideal_denominator = 10_000 * reserve_in
    if ideal_numerator == 0:
        return 0
    kept = amount_out * ideal_denominator * 10_000 // ideal_numerator
    return max(0, min(10_000, 10_000 - kept))


def _minimum(expected: int, body: SwapRequest) -> int:
    """The least a swap may pay out: `min_out`, else the quote less the slippage; a
    quote already below it is refused before anything is sent."""
    if body.min_out is not None and body.slippage_bps is not None:
        raise ApiError(
            422, "invalid_input", "give min_out or slippage_bps, not both", "slippage_bps"
        )
    if body.min_out is not None:
        min_out = int(body.min_out)
    else:
        slippage = _DEFAULT_SLIPPAGE_BPS if body.slippage_bps is None else body.slippage_bps
        min_out = expected * (10_000 - slippage) // 10_000
    if expected < min_out:
        raise ApiError(
            409,
            "slippage",
            f"the exchange pays {expected} now, below the minimum {min_out}",
            "min_out",
        )
    return min_out


class _Desk:
    """The exchange as the routes use it: assets checked, pools described, quotes."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        # A token's symbol and decimals never change: asked of the chain once each.
        self.known: dict[Address, tuple[str, int]] = {NATIVE_TOKEN: ("ETH", _NATIVE_DECIMALS)}

    def exchange(self) -> Exchange:
        return Exchange(self.gw.ledger, market_of(self.gw).exchange, preflight=True)

    async def describe(self, asset: Address) -> tuple[str, int]:
        """Its symbol and decimals; a token that answers neither is shown in its smallest
        unit with no symbol."""
        if asset not in self.known:
            erc20 = TokenContract(self.gw.ledger, asset)
            try:
                self.known[asset] = (await erc20.symbol(), await erc20.decimals())
            except (M2MPayError, ValueError, DecodingError):  # no such view, or garbage
                return "", 0
        return self.known[asset]

    async def pool_view(self, ex: Exchange, pool: Pool) -> PoolView:
        symbol0, decimals0 = await self.describe(pool.token0)
        symbol1, decimals1 = await self.describe(pool.token1)
        whole0, whole1 = 10**decimals0, 10**decimals1
        return PoolView(
            pool_id=hex32(pool.id),
            token0=pool.token0.checksum,
            token1=pool.token1.checksum,
            symbol0=symbol0,
            symbol1=symbol1,
            decimals0=decimals0,
            decimals1=decimals1,
            reserve0=str(pool.reserve0),
            reserve1=str(pool.reserve1),
            total_shares=str(pool.total_shares),
            shares=str(await ex.shares_of(pool.token0, pool.token1, self.gw.node.address)),
            price0=_ratio(pool.reserve1 * whole0, pool.reserve0 * whole1),
            price1=_ratio(pool.reserve0 * whole1, pool.reserve1 * whole0),
            fee_bps=FEE_BPS,
        )

    async def pair(
        self, first: str, second: str, fields: tuple[str, str]
    ) -> tuple[Address, Address]:
        a = await known_asset(self.gw, first, fields[0])
        b = await known_asset(self.gw, second, fields[1])
        if a == b:
            raise ApiError(422, "same_asset", f"{fields[1]} is {fields[0]} again", fields[1])
        return a, b

    async def pooled(self, ex: Exchange, a: Address, b: Address) -> tuple[int, int]:
        """The reserves of `a` and `b`; 404 `no_pool` when no one has pooled them."""
        reserve_a, reserve_b, total = await ex.reserves(a, b)
        if total == 0:
            raise ApiError(404, "no_pool", f"no pool of {a.checksum} and {b.checksum}")
        return reserve_a, reserve_b

    async def quoted(self, sell: Address, buy: Address, amount_in: int) -> QuoteView:
        ex = self.exchange()
        reserve_in, reserve_out = await self.pooled(ex, sell, buy)
        with contract_refusals({"amount_too_large": "amount_in", "invalid_amount": "amount_in"}):
            amount_out = await ex.quote(sell, buy, amount_in)
        return QuoteView(
            sell=sell.checksum,
            buy=buy.checksum,
            amount_in=str(amount_in),
            amount_out=str(amount_out),
            fee=str(-(-amount_in * FEE_BPS // 10_000)),
            fee_bps=FEE_BPS,
            price_impact_bps=_price_impact_bps(amount_in, amount_out, reserve_in, reserve_out),
        )

    async def liquidity_view(
        self, ex: Exchange, receipt: Receipt, a: Address, b: Address
    ) -> LiquidityView:
        moved = next(
            (e for e in ex.logged(receipt) if isinstance(e, LiquidityAdded | LiquidityRemoved)),
            None,
        )
        if moved is None:
            raise ContractError("the exchange's receipt logs no change of liquidity")
        # token0 is the lower address (the native coin first): a and b in the caller's order.
        amount_a, amount_b = moved.amount0, moved.amount1
        if a > b:
            amount_a, amount_b = amount_b, amount_a
        return LiquidityView(
            pool_id=hex32(moved.pool),
            asset_a=a.checksum,
            asset_b=b.checksum,
            amount_a=str(amount_a),
            amount_b=str(amount_b),
            shares=str(moved.shares),
            shares_held=str(await ex.shares_of(a, b, self.gw.node.address)),
            tx_hash=hex32(receipt.tx_hash),
            block=receipt.block_number,
            gas_used=receipt.gas_used,
        )


def dex_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "exchange")
    desk = _Desk(gw)

    @routes.read("/v1/dex/pools", PoolList, summary="Every pool of the exchange")
    async def pools() -> PoolList:
        ex = desk.exchange()
        return PoolList(pools=[await desk.pool_view(ex, pool) for pool in await ex.pools()])

    @routes.read(
        "/v1/dex/quote",
        QuoteView,
        summary="What selling `amount` of `sell` for `buy` would pay out now",
    )
    async def quote(sell: AssetQuery, buy: AssetQuery, amount: AmountQuery) -> QuoteView:
        market_of(gw)
        if not 0 < int(amount) <= UINT256_MAX:  # the pattern lets 78 digits through
            raise ApiError(422, "invalid_amount", "amount: above zero, below 2^256", "amount")
        sold, bought = await desk.pair(sell, buy, ("sell", "buy"))
        return await desk.quoted(sold, bought, int(amount))

    @routes.write(
        "/v1/dex/swaps",
        SwapView,
        status_code=201,
        summary="Swap exactly `amount_in` for at least a minimum, with the node's key",
        description="The minimum is `min_out`, or the quote less `slippage_bps` (default "
        "50). A quote below it is refused (409 `slippage`) before anything is sent; the "
        "node's allowance to the exchange is given by permit where the token has one.",
    )
    async def swap(body: SwapRequest) -> SwapView:
        market_of(gw)
        sell, buy = await desk.pair(body.sell, body.buy, ("sell", "buy"))
        amount_in = int(body.amount_in)
        quote = await desk.quoted(sell, buy, amount_in)
        min_out = _minimum(int(quote.amount_out), body)
        await require_funds(gw, sell, amount_in, "amount_in")
        deadline = await chain_deadline(gw, body.deadline_s, body.deadline)
        ex = desk.exchange()
        with contract_refusals({"slippage": "min_out", "deadline_passed": "deadline"}):
            receipt = await ex.swap(gw.node.key, sell, buy, amount_in, min_out, deadline)
        swapped = next((e for e in ex.logged(receipt) if isinstance(e, Swapped)), None)
        if swapped is None:
            raise ContractError("the exchange's receipt of a swap logs no Swapped")
        return SwapView(
            sell=sell.checksum,
            buy=buy.checksum,
            amount_in=str(swapped.amount_in),
            amount_out=str(swapped.amount_out),
            min_out=str(min_out),
            tx_hash=hex32(receipt.tx_hash),
            block=receipt.block_number,
            gas_used=receipt.gas_used,
        )

    @routes.write(
        "/v1/dex/liquidity",
        LiquidityView,
        status_code=201,
        summary="Deposit two assets for shares of their pool (the first deposit makes it)",
        description="The pool takes both at its price, up to `amount_a` and `amount_b`; "
        "the first deposit sets the price, and its first 1,000 shares are locked for ever.",
    )
    async def add_liquidity(body: LiquidityAdd) -> LiquidityView:
        market_of(gw)
        a, b = await desk.pair(body.asset_a, body.asset_b, ("asset_a", "asset_b"))
        amount_a, amount_b = int(body.amount_a), int(body.amount_b)
        await require_funds(gw, a, amount_a, "amount_a")
        await require_funds(gw, b, amount_b, "amount_b")
        deadline = await chain_deadline(gw, body.deadline_s, body.deadline)
        ex = desk.exchange()
        fields = {"slippage": "min_shares", "deadline_passed": "deadline"}
        with contract_refusals(fields):
            receipt = await ex.add(
                gw.node.key, a, b, amount_a, amount_b, deadline, min_shares=int(body.min_shares)
            )
        return await desk.liquidity_view(ex, receipt, a, b)

    @routes.write(
        "/v1/dex/liquidity/removals",
        LiquidityView,
        status_code=201,
        summary="Give back shares of a pool for their part of both reserves",
    )
    async def remove_liquidity(body: LiquidityRemove) -> LiquidityView:
        market_of(gw)
        a, b = await desk.pair(body.asset_a, body.asset_b, ("asset_a", "asset_b"))
        ex = desk.exchange()
        await desk.pooled(ex, a, b)
        shares, held = int(body.shares), await ex.shares_of(a, b, gw.node.address)
        if shares > held:
            raise ApiError(
                409,
                "insufficient_shares",
                f"{shares} shares are more than the {held} this node holds",
                "shares",
            )
        deadline = await chain_deadline(gw, body.deadline_s, body.deadline)
        fields = {"slippage": "min_a", "deadline_passed": "deadline"}
        with contract_refusals(fields):
            receipt = await ex.remove(
                gw.node.key,
                a,
                b,
                shares,
                deadline,
                min_a=int(body.min_a),
                min_b=int(body.min_b),
            )
        return await desk.liquidity_view(ex, receipt, a, b)

    return routes.router
