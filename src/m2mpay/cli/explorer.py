"""`m2mpay explorer blocks|block|tx|address|channel|search`: the running node's chain as
an explorer shows it: blocks newest first, a transaction's call and events decoded
against the deployment's contracts, an address's balances and token transfers, a
channel's history on chain, and what a hash, an address or a number names. `--json`
answers as the API does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from m2mpay.cli.remote import Remote, kv_table, listing, remote_command
from m2mpay.client.explorer import (
    AddressDetail,
    BlockPage,
    BlockView,
    ChannelHistory,
    SearchHit,
    TransactionDetail,
)

__all__ = ["explorer_app"]

explorer_app = typer.Typer(
    help="Read the node's chain as an explorer shows it.", no_args_is_help=True
)


def _time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _args(args: dict[str, Any]) -> str:
    return json.dumps(args, separators=(", ", "=")).strip("{}").replace('"', "")


@remote_command(explorer_app, "blocks")
def blocks(
    before: Annotated[
        int | None, typer.Option(min=1, help="Only blocks below this number (the next page).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Blocks on the page.")] = 25,
    *,
    remote: Remote,
) -> None:
    """Blocks, newest first; the last line gives the next page's --before."""

    def shown(page: BlockPage) -> None:
        listing(
            "block",
            page.blocks,
            lambda b: (str(b.number), _time(b.timestamp), b.hash, str(len(b.transactions))),
            title=f"blocks (head {page.head})",
            keep="number time",
            fold="hash",
            numbers="transactions",
        )
        if page.next_before is not None:
            typer.echo(f"older: --before {page.next_before}")

    remote.answer(lambda node: node.explorer_blocks(before=before, limit=limit), shown)


@remote_command(explorer_app, "block")
def block(
    ref: Annotated[str, typer.Argument(metavar="NUMBER_OR_HASH", help="A number or a 0x hash.")],
    *,
    remote: Remote,
) -> None:
    """One block and its transactions' hashes."""

    def shown(found: BlockView) -> None:
        kv_table(
            f"block {found.number}",
            [
                ("hash", found.hash),
                ("parent", found.parent_hash),
                ("time", _time(found.timestamp)),
                ("gas used", f"{found.gas_used} of {found.gas_limit}"),
                *((f"tx {i}", tx) for i, tx in enumerate(found.transactions)),
            ],
        )

    remote.answer(lambda node: node.explorer_block(ref), shown)


@remote_command(explorer_app, "tx")
def tx(
    tx_hash: Annotated[str, typer.Argument(metavar="HASH", help="The transaction's 0x hash.")],
    *,
    remote: Remote,
) -> None:
    """A transaction: its call and events decoded, its receipt."""

    def shown(found: TransactionDetail) -> None:
        call = found.call
        called = (
            f"{call.contract}.{call.function}({_args(call.args)})"
            if call.function is not None
            else f"{call.contract or 'unknown contract'}: raw input, selector {call.selector}"
        )
        kv_table(
            f"transaction {found.hash}",
            [
                ("status", found.status),
                ("block", f"{found.block} (index {found.index}, {_time(found.timestamp)})"),
                ("from", found.sender.checksum),
                ("to", found.to.checksum if found.to else f"new contract {found.contract_created}"),
                ("value", f"{found.value} wei"),
                ("call", called),
                ("gas", f"{found.gas_used} of {found.gas}"),
                *(
                    (
                        f"event {e.log_index}",
                        f"{e.contract or e.address.checksum}.{e.event}({_args(e.args)})"
                        if e.event is not None
                        else f"{e.address.checksum}: raw, {len(e.topics)} topics",
                    )
                    for e in found.events
                ),
            ],
        )

    remote.answer(lambda node: node.explorer_transaction(tx_hash), shown)


@remote_command(explorer_app, "address")
def address(
    account: Annotated[str, typer.Argument(metavar="ADDRESS", help="0x and 40 hex digits.")],
    *,
    remote: Remote,
) -> None:
    """An address: its balances, which contract it is, its newest token transfers."""

    def shown(found: AddressDetail) -> None:
        kv_table(
            f"address {found.address.checksum}",
            [
                ("balance", f"{found.balance} wei"),
                ("contract", found.contract or "no: an account"),
                *((t.symbol, str(t.balance)) for t in found.tokens),
            ],
        )
        listing(
            "transfer",
            found.transfers,
            lambda t: (
                str(t.block),
                escape(t.token.checksum),
                t.sender.checksum,
                t.receiver.checksum,
                str(t.value),
            ),
            keep="block",
            fold="token sender receiver",
            numbers="value",
        )

    remote.answer(lambda node: node.explorer_address(account), shown)


@remote_command(explorer_app, "channel")
def channel(
    channel_id: Annotated[str, typer.Argument(metavar="CHANNEL_ID", help="The 0x channel id.")],
    *,
    remote: Remote,
) -> None:
    """A channel's history on chain: the hub's events of it, in order."""

    def shown(found: ChannelHistory) -> None:
        listing(
            "event",
            found.events,
            lambda s: (str(s.block), _time(s.timestamp), s.event or "raw", escape(_args(s.args))),
            title=f"channel {found.channel_id}",
            keep="block time event",
            fold="args",
        )

    remote.answer(lambda node: node.channel_history(channel_id), shown)


@remote_command(explorer_app, "search")
def search(
    query: Annotated[str, typer.Argument(help="A block number, an address, a 0x hash or id.")],
    *,
    remote: Remote,
) -> None:
    """What a query names: a block, a transaction, a channel or an address."""

    def shown(hit: SearchHit) -> None:
        typer.echo(f"{hit.kind} {hit.id}")

    remote.answer(lambda node: node.explorer_search(query), shown)
