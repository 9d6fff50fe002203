"""`m2mpay wallet …`: a running node's balances, on-chain transfers, the dev faucet."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape

from m2mpay.cli.common import console
from m2mpay.cli.remote import (
    AmountArg,
    Remote,
    asset_named,
    remote_command,
    table,
)
from m2mpay.cli.units import Units, decimal_amount
from m2mpay.client import NATIVE, InfoView, NodeClient, TransferView, WalletView

__all__ = ["wallet_app"]

wallet_app = typer.Typer(
    help="A running node's wallet: balances, transfers, faucet.", no_args_is_help=True
)


def _show(wallet: WalletView, info: InfoView) -> None:
    title = f"wallet {wallet.address.checksum} on {info.chain}"
    shown = table(title, keep="asset", fold="address", numbers="on_chain in_channels")
    for item in wallet.balances:
        # Each balance names its asset and its decimals, a factory token's too.
        on_chain, in_channels = (
            f"{decimal_amount(value, item.decimals)} {escape(item.symbol)}"
            for value in (item.on_chain, item.in_channels)
        )
        shown.add_row(
            escape(item.symbol),
            "native" if item.asset == NATIVE else item.asset.checksum,
            on_chain,
            in_channels,
        )
    console.print(shown)
    if info.peer_endpoint:
        console.print(f"peers reach this node at {escape(info.peer_endpoint)}")


@remote_command(wallet_app, "show")
def show(remote: Remote) -> None:
    """Balances on chain and in open channels (`--json`: in the smallest unit)."""

    async def work(node: NodeClient) -> None:
        wallet, info = await asyncio.gather(node.wallet(), node.info())
        remote.reply(wallet, lambda shown: _show(shown, info))

    remote.call(work)


@remote_command(wallet_app, "faucet")
def faucet(
    amount: Annotated[
        int | None, typer.Option(min=1, help="Tokens to mint (default: 1,000 whole tokens).")
    ] = None,
    native: Annotated[
        int | None, typer.Option(min=1, help="Native coin to send (default: 1 ether).")
    ] = None,
    asset: Annotated[
        str | None, typer.Option(help="The token to mint (default: the node's token).")
    ] = None,
    *,
    remote: Remote,
) -> None:
    """Dev chains only: mint tokens and send coin for gas to the node."""

    async def minted(node: NodeClient, info: InfoView) -> WalletView:
        return await node.faucet(amount=amount, native=native, asset=await asset_named(node, asset))

    remote.answer_with(lambda node: node.info(), minted, _show)


@remote_command(wallet_app, "transfer")
def transfer(
    to: Annotated[str, typer.Argument(help="The receiver's address.")],
    amount: AmountArg,
    asset: Annotated[
        str, typer.Option(help="ETH (the chain's coin), the token's symbol, or an address.")
    ] = "ETH",
    *,
    remote: Remote,
) -> None:
    """Send coin or tokens on chain; returns once the transaction is mined."""

    async def work(node: NodeClient) -> None:
        units = await Units.load(node)
        chosen = units.asset(asset)
        done = await node.transfer(to, amount, asset=chosen)
        remote.reply(done, lambda shown: _said_sent(shown, units.amount(amount, chosen)))

    def _said_sent(done: TransferView, sent: str) -> None:
        console.print(
            f"sent {escape(sent)} to {escape(to)} in block {done.block} "
            f"(tx {done.tx_hash}, gas {done.gas_used})"
        )

    remote.call(work)
