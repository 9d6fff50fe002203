"""`m2mpay dex pools|quote|swap|add|remove`: the exchange of the running node's
deployment, trading with the node's key.

Assets are named by address, `ETH` (the chain's coin), the node's token's symbol, or
the symbol of a token the deployment's factory made (`m2mpay token list`); amounts are
integers in the asset's smallest unit, as `m2mpay wallet transfer` takes them. People
see amounts in whole tokens with their symbols; `--json` answers as the API does."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from m2mpay.cli.common import console
from m2mpay.cli.remote import AmountArg, Remote, remote_command
from m2mpay.cli.units import Units, decimal_amount
from m2mpay.client import LiquidityView, PoolView, QuoteView, SwapView

__all__ = ["dex_app"]

dex_app = typer.Typer(help="The exchange: pools, quotes, swaps, liquidity.", no_args_is_help=True)

AssetArg = Annotated[str, typer.Argument(help="ETH, a token's symbol, or its address.")]
DeadlineOption = Annotated[
    int, typer.Option(min=1, help="Seconds of the chain's clock after which it is refused.")
]


def _tx(tx_hash: str, block: int, gas_used: int) -> str:
    return f"in block {block} (tx {tx_hash}, gas {gas_used:,})"


@remote_command(dex_app, "pools")
def pools(remote: Remote) -> None:
    """Every pool: its pair (ETH first), reserves, the node's shares and the prices."""

    def row(pool: PoolView) -> tuple[str, ...]:
        pair = f"{pool.symbol0 or pool.token0.checksum}/{pool.symbol1 or pool.token1.checksum}"
        return (
            escape(pair),
            decimal_amount(pool.reserve0, pool.decimals0),
            decimal_amount(pool.reserve1, pool.decimals1),
            str(pool.shares),  # as `dex remove` takes them
            pool.price0,
            pool.price1,
        )

    remote.answer_rows(
        "pool",
        lambda node: node.pools(),
        row,
        fold="pair",
        numbers="reserve0 reserve1 shares price0 price1",
    )


@remote_command(dex_app, "quote")
def quote(sell: AssetArg, buy: AssetArg, amount: AmountArg, *, remote: Remote) -> None:
    """What selling AMOUNT of SELL for BUY would pay out now, the 0.3 % fee taken."""

    remote.answer_with(
        Units.load,
        lambda node, units: node.quote(units.asset(sell), units.asset(buy), amount),
        _said_quote,
    )


def _said_quote(quoted: QuoteView, units: Units) -> None:
    console.print(
        f"{escape(units.amount(quoted.amount_in, quoted.sell))} buys "
        f"{escape(units.amount(quoted.amount_out, quoted.buy))} now "
        f"(fee {escape(units.amount(quoted.fee, quoted.sell))}, "
        f"price impact {quoted.price_impact_bps / 100:.2f} %)"
    )


@remote_command(dex_app, "swap")
def swap(
    sell: AssetArg,
    buy: AssetArg,
    amount: AmountArg,
    min_out: Annotated[
        int | None, typer.Option(min=0, help="Refuse to get less (smallest unit).")
    ] = None,
    slippage_bps: Annotated[
        int | None,
        typer.Option(min=0, max=10_000, help="Or: the quote less this (default 50, 0.5 %)."),
    ] = None,
    deadline_s: DeadlineOption = 300,
    *,
    remote: Remote,
) -> None:
    """Sell exactly AMOUNT of SELL for at least a minimum of BUY."""

    remote.answer_with(
        Units.load,
        lambda node, units: node.swap(
            units.asset(sell),
            units.asset(buy),
            amount,
            min_out=min_out,
            slippage_bps=slippage_bps,
            deadline_s=deadline_s,
        ),
        _said_swap,
    )


def _said_swap(done: SwapView, units: Units) -> None:
    console.print(
        f"sold {escape(units.amount(done.amount_in, done.sell))} for "
        f"{escape(units.amount(done.amount_out, done.buy))} "
        f"{_tx(done.tx_hash, done.block, done.gas_used)}"
    )


@remote_command(dex_app, "add")
def add(
    asset_a: AssetArg,
    asset_b: AssetArg,
    amount_a: AmountArg,
    amount_b: AmountArg,
    min_shares: Annotated[int, typer.Option(min=0, help="Refuse fewer shares.")] = 0,
    deadline_s: DeadlineOption = 300,
    *,
    remote: Remote,
) -> None:
    """Deposit up to AMOUNT_A and AMOUNT_B at the pool's price for shares of it (the
    first deposit sets the price)."""

    remote.answer_with(
        Units.load,
        lambda node, units: node.add_liquidity(
            units.asset(asset_a),
            units.asset(asset_b),
            amount_a,
            amount_b,
            min_shares=min_shares,
            deadline_s=deadline_s,
        ),
        lambda done, units: _said_liquidity("added", done, units),
    )


@remote_command(dex_app, "remove")
def remove(
    asset_a: AssetArg,
    asset_b: AssetArg,
    shares: Annotated[int, typer.Argument(min=1, help="Shares of the pool to give back.")],
    min_a: Annotated[int, typer.Option(min=0, help="Refuse less of ASSET_A.")] = 0,
    min_b: Annotated[int, typer.Option(min=0, help="Refuse less of ASSET_B.")] = 0,
    deadline_s: DeadlineOption = 300,
    *,
    remote: Remote,
) -> None:
    """Give back SHARES of the pool for their part of both reserves."""

    remote.answer_with(
        Units.load,
        lambda node, units: node.remove_liquidity(
            units.asset(asset_a),
            units.asset(asset_b),
            shares,
            min_a=min_a,
            min_b=min_b,
            deadline_s=deadline_s,
        ),
        lambda done, units: _said_liquidity("removed", done, units),
    )


def _said_liquidity(what: str, done: LiquidityView, units: Units) -> None:
    console.print(
        f"{what} {escape(units.amount(done.amount_a, done.asset_a))} and "
        f"{escape(units.amount(done.amount_b, done.asset_b))} for {done.shares} shares "
        f"(the node holds {done.shares_held}) {_tx(done.tx_hash, done.block, done.gas_used)}"
    )
