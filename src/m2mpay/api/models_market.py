"""The bodies of the market's routes (`m2mpay.api.routes_tokens`, `routes_dex`): tokens
the deployment's factory made, and the exchange's pools, quotes, swaps and liquidity.

Assets are addresses, the native coin the zero address; amounts are integer strings in
each asset's smallest unit. Deadlines are the chain's clock (block timestamps, seconds).
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from m2mpay.api import examples as ex
from m2mpay.api.examples import example
from m2mpay.api.models import Address, Amount, Count, Hex32, PositiveAmount

__all__ = [
    "LiquidityAdd",
    "LiquidityRemove",
    "LiquidityView",
    "PoolList",
    "PoolView",
    "QuoteView",
    "SwapRequest",
    "SwapView",
    "TokenCreate",
    "TokenDetail",
    "TokenList",
    "TokenView",
]

MAX_DECIMALS: Final = 77  # the factory's: 10**78 does not fit in a uint256
_MAX_DEADLINE_S: Final = 7 * 86_400
_DEADLINE_S = Field(
    300,
    ge=1,
    le=_MAX_DEADLINE_S,
    description="Seconds of the chain's clock from its latest block after which the "
    "exchange refuses the transaction (`deadline_passed`).",
)
_DEADLINE = Field(
    None,
    ge=0,
    le=2**64 - 1,
    description="Instead of `deadline_s`: the block timestamp (seconds) after which the "
    "exchange refuses it. One already past is refused before anything is sent.",
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as every request of models.py


def _fits(text: str, limit: int) -> str:
    if len(text.encode()) > limit:
        raise ValueError(f"at most {limit} bytes of UTF-8")
    return text


# -- tokens


class TokenCreate(_Request):
    model_config = example(ex.TOKEN_CREATE)
    name: str = Field(min_length=1, max_length=64, description="e.g. IoT-Light (64 bytes at most).")
    symbol: str = Field(min_length=1, max_length=32, description="e.g. LIGHT (32 bytes at most).")
    decimals: int = Field(18, ge=0, le=MAX_DECIMALS, description="Decimal places of one token.")
    supply: Amount = Field("0", description="Made at once, to `holder`, in the smallest unit.")
    holder: Address | None = Field(None, description="Who gets the supply (default: this node).")
    mintable: StrictBool = Field(
        False,
        description="Whether this node may mint more later; if not, no one ever may.",
    )

    @field_validator("name")
    @classmethod
    def _name_fits(cls, name: str) -> str:
        return _fits(name, 64)

    @field_validator("symbol")
    @classmethod
    def _symbol_fits(cls, symbol: str) -> str:
        return _fits(symbol, 32)


class TokenView(BaseModel):
    model_config = example(ex.TOKEN_MADE)
    address: Address
    name: str
    symbol: str
    decimals: int = Field(ge=0, le=255)
    supply: Amount = Field(description="What was made at creation (mints add to it later).")
    creator: Address
    holder: Address = Field(description="Who got the supply made at creation.")
    mint_owner: Address | None = Field(description="Who may mint more; null: no one, ever.")
    block: Count = Field(description="The block it was created in.")
    tx_hash: Hex32


class TokenList(BaseModel):
    model_config = example({"tokens": [ex.TOKEN_MADE]})
    tokens: list[TokenView] = Field(description="Every token the factory made, oldest first.")


class TokenDetail(BaseModel):
    model_config = example(ex.TOKEN_DETAIL)
    token: TokenView
    total_supply: Amount = Field(description="All of it now, mints included.")
    balance: Amount = Field(description="What this node holds of it.")


# -- the exchange


class PoolView(BaseModel):
    model_config = example(ex.POOL)
    pool_id: Hex32
    token0: Address = Field(description="The zero address (the native coin) or the lower token.")
    token1: Address
    symbol0: str = Field(description="ETH for the native coin; empty if the token has none.")
    symbol1: str
    decimals0: int = Field(ge=0, le=255)
    decimals1: int = Field(ge=0, le=255)
    reserve0: Amount
    reserve1: Amount
    total_shares: Amount = Field(description="The first 1,000 are locked for ever.")
    shares: Amount = Field(description="This node's shares of the pool.")
    price0: str = Field(
        description="Whole token1 for one whole token0 at the reserves, as a decimal "
        "(18 places at most): the price with no fee and no impact."
    )
    price1: str = Field(description="Whole token0 for one whole token1.")
    fee_bps: int = Field(description="Of what is sold, left in the pool for its providers.")


class PoolList(BaseModel):
    model_config = example({"pools": [ex.POOL]})
    pools: list[PoolView] = Field(description="In the order they were created.")


class QuoteView(BaseModel):
    model_config = example(ex.QUOTE)
    sell: Address
    buy: Address
    amount_in: Amount
    amount_out: Amount = Field(description="What a swap of `amount_in` pays out now.")
    fee: Amount = Field(description="The part of `amount_in` left to the providers (rounded up).")
    fee_bps: int
    price_impact_bps: int = Field(
        ge=0,
        le=10_000,
        description="How far below the pool's price (fee aside) `amount_out` is, rounded up.",
    )


class SwapRequest(_Request):
    model_config = example(ex.SWAP_REQUEST)
    sell: Address
    buy: Address
    amount_in: PositiveAmount = Field(description="Exactly this much is sold.")
    min_out: Amount | None = Field(
        None, description="Refuse to get less (`slippage`); not with `slippage_bps`."
    )
    slippage_bps: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="Or: refuse to get less than the quote minus this many basis points "
        "(default 50 when neither is given).",
    )
    deadline_s: int = _DEADLINE_S
    deadline: int | None = _DEADLINE


class SwapView(BaseModel):
    model_config = example(ex.SWAP)
    sell: Address
    buy: Address
    amount_in: Amount
    amount_out: Amount = Field(description="What the node received.")
    min_out: Amount = Field(description="The least it would have taken.")
    tx_hash: Hex32
    block: Count
    gas_used: Count


class LiquidityAdd(_Request):
    model_config = example(ex.LIQUIDITY_ADD)
    asset_a: Address
    asset_b: Address
    amount_a: PositiveAmount = Field(description="At most this much of `asset_a`.")
    amount_b: PositiveAmount = Field(
        description="At most this much of `asset_b`: a pool takes both at its price, the "
        "first deposit sets it."
    )
    min_shares: Amount = Field("0", description="Refuse fewer shares (`slippage`).")
    deadline_s: int = _DEADLINE_S
    deadline: int | None = _DEADLINE


class LiquidityRemove(_Request):
    model_config = example(ex.LIQUIDITY_REMOVE)
    asset_a: Address
    asset_b: Address
    shares: PositiveAmount = Field(description="Of this node's shares of the pool.")
    min_a: Amount = Field("0", description="Refuse less of `asset_a` (`slippage`).")
    min_b: Amount = Field("0", description="Refuse less of `asset_b`.")
    deadline_s: int = _DEADLINE_S
    deadline: int | None = _DEADLINE


class LiquidityView(BaseModel):
    model_config = example(ex.LIQUIDITY)
    pool_id: Hex32
    asset_a: Address
    asset_b: Address
    amount_a: Amount = Field(description="Of `asset_a`, into the pool (added) or out (removed).")
    amount_b: Amount
    shares: Amount = Field(description="Minted (added) or burned (removed).")
    shares_held: Amount = Field(description="This node's shares of the pool now.")
    tx_hash: Hex32
    block: Count
    gas_used: Count
