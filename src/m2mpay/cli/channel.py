"""`m2mpay channel open|list|show|pay|top-up|close`: a running node's payment channels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from m2mpay.cli.common import console, err_console
from m2mpay.cli.remote import (
    AssetOption,
    Remote,
    asset_named,
    busy,
    id_of,
    kv_table,
    on_named,
    remote_command,
    short,
)
from m2mpay.cli.units import Units
from m2mpay.client import ChannelView, NodeClient, PaymentMade
from m2mpay.crypto import Address

__all__ = ["channel_app", "channel_id_of"]

channel_app = typer.Typer(help="Payment channels of a running node.", no_args_is_help=True)

ChannelArg = Annotated[
    str, typer.Argument(help="The channel id (0x…), or a unique prefix of it as listed.")
]


async def channel_id_of(node: NodeClient, given: str) -> str:
    """The full id of the channel `given` names (a full id, or a prefix)."""
    return await id_of(given, "channel", node.channels, key=lambda c: c.channel_id)


def _show(channel: ChannelView, units: Units, title: str = "channel") -> None:
    def amount(value: int) -> str:
        return units.amount(value, channel.asset)

    def pair(mine: int, peer: int) -> str:
        return f"{amount(mine)} / {amount(peer)}"

    final = channel.final_balance_mine
    kv_table(
        title,
        [
            ("id", channel.channel_id),
            ("peer", channel.peer.checksum),
            ("phase", channel.phase),
            ("asset", channel.asset.checksum),
            ("challenge period", f"{channel.challenge_period} s"),
            ("deposit (mine / peer)", pair(channel.deposit_mine, channel.deposit_peer)),
            ("balance (mine / peer)", pair(channel.balance_mine, channel.balance_peer)),
            ("sent / received", pair(channel.sent_total, channel.received_total)),
            ("in flight", channel.in_flight),
            ("final balance (mine)", None if final is None else amount(final)),
        ],
    )


def _row(channel: ChannelView, units: Units) -> list[str]:
    return [
        short(channel.channel_id),
        short(channel.peer.checksum),
        channel.phase,
        *(
            units.amount(value, channel.asset)
            for value in (
                channel.balance_mine,
                channel.balance_peer,
                channel.sent_total,
                channel.received_total,
            )
        ),
    ]


@remote_command(channel_app, "open")
def open_channel(
    peer: Annotated[
        str,
        typer.Argument(
            help="The peer's address, or the URL of its node's API (its address and wire "
            "endpoint are then read from its public /v1/info)."
        ),
    ],
    deposit: Annotated[int, typer.Option(min=1, help="Our deposit, in the smallest unit.")],
    endpoint: Annotated[
        str | None, typer.Option(help="The peer's wire endpoint (ws://host:port).")
    ] = None,
    peer_deposit: Annotated[int, typer.Option(min=0, help="What the peer deposits.")] = 0,
    asset: AssetOption = None,
    challenge_period: Annotated[
        int | None, typer.Option(min=10, help="Seconds (default: the node's).")
    ] = None,
    *,
    remote: Remote,
) -> None:
    """Open a channel with a peer and fund it on chain."""

    async def opened(node: NodeClient) -> ChannelView:
        address: Address | str = peer
        reach = endpoint
        if peer.startswith(("http://", "https://")):
            async with NodeClient(peer) as other:
                theirs = await other.info()
            address, reach = theirs.address, endpoint or theirs.peer_endpoint
        chosen = await asset_named(node, asset)
        with busy("opening the channel on chain …", remote.as_json):
            return await node.open_channel(
                address,
                deposit,
                endpoint=reach,
                asset=chosen,
                peer_deposit=peer_deposit,
                challenge_period=challenge_period,
            )

    remote.answer_in_units(opened, lambda c, units: _show(c, units, "channel opened"))


@remote_command(channel_app, "list")
def list_channels(remote: Remote) -> None:
    """Every channel of the node (ids are cut; commands accept the prefix shown)."""
    remote.answer_list(
        "channel",
        lambda node: node.channels(),
        _row,
        keep="id peer phase",
        numbers="mine peer's sent received",
    )


@remote_command(channel_app, "show")
def show_channel(channel: ChannelArg, *, remote: Remote) -> None:
    """One channel in full."""

    remote.answer_in_units(on_named(channel, channel_id_of, lambda node, c: node.channel(c)), _show)


async def _amounts_of(node: NodeClient, channel_id: str) -> Callable[[int], str]:
    """How people read amounts of the channel's asset."""
    units, view = await asyncio.gather(Units.load(node), node.channel(channel_id))
    return lambda value: units.amount(value, view.asset)


@remote_command(channel_app, "pay")
def pay(
    channel: ChannelArg,
    amount: Annotated[int, typer.Argument(min=1, help="Per payment, in the smallest unit.")],
    count: Annotated[int, typer.Option(min=1, help="Make this many payments, one by one.")] = 1,
    wait: Annotated[
        bool, typer.Option(help="Answer each payment once the payee holds it durably.")
    ] = True,
    *,
    remote: Remote,
) -> None:
    """Pay the peer over the channel, `--count` times; a progress bar shows the stream."""

    async def work(node: NodeClient) -> None:
        channel_id = await channel_id_of(node, channel)
        in_words = str if remote.as_json else await _amounts_of(node, channel_id)
        made: list[PaymentMade] = []
        progress = Progress(
            TextColumn("paying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[paid]} paid"),
            TimeElapsedColumn(),
            console=err_console,
            disable=remote.as_json or count == 1,
        )
        with progress:
            task = progress.add_task("pay", total=count, paid=in_words(0))
            for _ in range(count):
                made.append(await node.pay(channel_id, amount, wait=wait))
                progress.update(task, advance=1, paid=in_words(amount * len(made)))
        last = made[-1]
        summary: dict[str, str | int] = {
            "channel_id": channel_id,
            "payments": len(made),
            "amount": str(amount * len(made)),
            "sent_total": str(last.sent_total),
            "seq": last.seq,
            "acknowledged": sum(p.acknowledged for p in made),
        }
        remote.reply(summary, lambda done: said(done, in_words))

    def said(summary: dict[str, str | int], in_words: Callable[[int], str]) -> None:
        console.print(
            f"paid {in_words(int(summary['amount']))} in {summary['payments']} payment(s) on "
            f"{short(str(summary['channel_id']))}; {summary['acknowledged']} acknowledged, "
            f"{in_words(int(summary['sent_total']))} sent in all"
        )

    remote.call(work)


@remote_command(channel_app, "top-up")
def top_up(
    channel: ChannelArg,
    amount: Annotated[int, typer.Argument(min=1, help="Added to our deposit, smallest unit.")],
    *,
    remote: Remote,
) -> None:
    """Add to our deposit on chain; answers once the chain shows it."""

    async def topped(node: NodeClient, channel_id: str) -> ChannelView:
        with busy(f"depositing on {escape(short(channel_id))} …", remote.as_json):
            return await node.top_up(channel_id, amount)

    remote.answer_in_units(
        on_named(channel, channel_id_of, topped),
        lambda c, units: _show(c, units, "channel topped up"),
    )


@remote_command(channel_app, "close")
def close(channel: ChannelArg, *, remote: Remote) -> None:
    """Close cooperatively (unilaterally if the peer does not answer) and settle on chain."""

    async def closed(node: NodeClient, channel_id: str) -> ChannelView:
        with busy(f"closing {escape(short(channel_id))} on chain …", remote.as_json):
            return await node.close_channel(channel_id)

    remote.answer_in_units(
        on_named(channel, channel_id_of, closed),
        lambda c, units: _show(c, units, "channel closed"),
    )
