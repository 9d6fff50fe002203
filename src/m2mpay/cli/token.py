"""`m2mpay token create|list|show`: machines' own tokens, made by the running node's
deployment's TokenFactory with the node's key, and the list of every token it made.

Supplies are given in whole tokens as people write them (`--supply 1000.5`), sent to
the node exactly in the smallest unit; `--json` answers as the API does."""

from __future__ import annotations

import re
from typing import Annotated, Final

import typer
from rich.markup import escape

from m2mpay.cli.remote import Remote, kv_table, remote_command
from m2mpay.cli.units import decimal_amount
from m2mpay.client import NodeClient, TokenDetail, TokenView
from m2mpay.errors import M2MPayError

__all__ = ["MAX_DECIMALS", "parse_supply", "token_app"]

token_app = typer.Typer(help="Create machines' own tokens and list them.", no_args_is_help=True)

MAX_DECIMALS: Final = 77  # the factory's: 10**78 does not fit in a uint256
_AMOUNT: Final = re.compile(r"(\d{1,78})(?:\.(\d{1,77}))?")


def parse_supply(text: str, decimals: int) -> int:
    """Whole tokens as a person writes them (`1000`, `2.5`) in the token's smallest
    units, exactly: no more fraction digits than `decimals`."""
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(f"--supply {text!r} is not a number of tokens such as 1000 or 2.5")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction.rstrip("0")) > decimals:
        raise typer.BadParameter(f"--supply {text!r} has more than {decimals} decimals")
    fraction = fraction.rstrip("0").ljust(decimals, "0")
    value: int = int(whole) * 10**decimals + (int(fraction) if fraction else 0)
    if value >= 1 << 256:
        raise typer.BadParameter(f"--supply {text!r} does not fit in a uint256")
    return value


def _rows(token: TokenView) -> list[tuple[str, object]]:
    return [
        ("address", token.address.checksum),
        ("name", token.name),
        ("symbol", token.symbol),
        ("decimals", token.decimals),
        ("made", f"{decimal_amount(token.supply, token.decimals)} {token.symbol}"),
        ("holder", token.holder.checksum),
        ("mint owner", token.mint_owner.checksum if token.mint_owner else "no one: fixed supply"),
        ("creator", token.creator.checksum),
        ("block", f"{token.block} (tx {token.tx_hash})"),
    ]


@remote_command(token_app, "create")
def create(
    name: Annotated[str, typer.Argument(help="The token's name, e.g. IoT-Light.")],
    symbol: Annotated[str, typer.Argument(help="Its symbol, e.g. LIGHT.")],
    decimals: Annotated[
        int, typer.Option(min=0, max=MAX_DECIMALS, help="Decimal places of one token.")
    ] = 18,
    supply: Annotated[
        str, typer.Option(help="Whole tokens made at once, to the holder (e.g. 1000 or 2.5).")
    ] = "0",
    holder: Annotated[
        str | None, typer.Option(help="Who gets the supply (default: the node).")
    ] = None,
    mintable: Annotated[
        bool, typer.Option(help="The node may mint more later (default: no one ever may).")
    ] = False,
    *,
    remote: Remote,
) -> None:
    """Create a token with permit on the node's chain; it works at once in channels,
    sessions and on the exchange."""
    if not name or not symbol:
        raise typer.BadParameter("a token needs a name and a symbol")
    amount = parse_supply(supply, decimals)

    async def work(node: NodeClient) -> None:
        made = await node.create_token(
            name, symbol, decimals=decimals, supply=amount, holder=holder, mintable=mintable
        )
        remote.reply(made, lambda shown: kv_table(f"token {shown.symbol} created", _rows(shown)))

    remote.call(work)


@remote_command(token_app, "list")
def list_tokens(remote: Remote) -> None:
    """Every token the node's deployment's factory made, oldest first."""
    remote.answer_list(
        "token",
        lambda node: node.tokens(),
        lambda token, _: (
            escape(token.symbol),
            escape(token.name),
            token.address.checksum,
            token.mint_owner.checksum if token.mint_owner else "—",
            decimal_amount(token.supply, token.decimals),
        ),
        keep="symbol",
        fold="name address mint_owner",
        numbers="made",
    )


async def _token_named(node: NodeClient, text: str) -> TokenDetail:
    """The token at an address, or the one the factory made with this symbol."""
    if text.lower().startswith("0x"):
        return await node.token(text)
    named = [token.address for token in await node.tokens() if token.symbol == text]
    if len(named) != 1:
        some = "no token" if not named else f"{len(named)} tokens"
        raise M2MPayError(f"{some} of the factory's are {text!r}: give the address")
    return await node.token(named[0])


@remote_command(token_app, "show")
def show(
    # Not `token`: that is the API token's `--token`.
    named: Annotated[str, typer.Argument(metavar="TOKEN", help="The token's address or symbol.")],
    *,
    remote: Remote,
) -> None:
    """One token the factory made, its supply now and the node's balance of it."""

    def shown(detail: TokenDetail) -> None:
        made = detail.token
        kv_table(
            f"token {made.symbol}",
            [
                *_rows(made),
                (
                    "supply now",
                    f"{decimal_amount(detail.total_supply, made.decimals)} {made.symbol}",
                ),
                (
                    "node's balance",
                    f"{decimal_amount(detail.balance, made.decimals)} {made.symbol}",
                ),
            ],
        )

    remote.answer(lambda node: _token_named(node, named), shown)
