"""`m2mpay channel open|list|show|pay|close`: a running node's payment channels."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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

from m2mpay.cli.common import JsonOption, console, err_console
from m2mpay.cli.remote import (
    TokenOption,
    UrlOption,
    asset_address,
    call,
    emit,
    kv_table,
    resolve_id,
    short,
    table,
)
from m2mpay.client import DEFAULT_URL, ChannelView, NodeClient, PaymentMade
from m2mpay.crypto import Address

__all__ = ["channel_app", "channel_id_of"]

channel_app = typer.Typer(help="Payment channels of a running node.", no_args_is_help=True)

ChannelArg = Annotated[
    str, typer.Argument(help="The channel id (0x…), or a unique prefix of it as listed.")
]


async def channel_id_of(node: NodeClient, given: str) -> str:
    """The full id of the channel `given` names (a full id, or a prefix)."""
    if len(given) == 66:
        return given
    return resolve_id(given, [c.channel_id for c in await node.channels()], "channel")


@contextlib.contextmanager
def _busy(message: str, quiet: bool) -> Iterator[None]:
    """A spinner on stderr while the node works on chain (not with --json)."""
    if quiet:
        yield
        return
    with err_console.status(message):
        yield


def _show(channel: ChannelView, title: str = "channel") -> None:
    kv_table(
        title,
        [
            ("id", channel.channel_id),
            ("peer", channel.peer.checksum),
            ("phase", channel.phase),
            ("asset", channel.asset.checksum),
            ("challenge period", f"{channel.challenge_period} s"),
            ("deposit (mine / peer)", f"{channel.deposit_mine} / {channel.deposit_peer}"),
            ("balance (mine / peer)", f"{channel.balance_mine} / {channel.balance_peer}"),
            ("sent / received", f"{channel.sent_total} / {channel.received_total}"),
            ("in flight", channel.in_flight),
            ("final balance (mine)", channel.final_balance_mine),
        ],
    )


@channel_app.command("open")
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
    asset: Annotated[
        str | None, typer.Option(help="Token address or symbol (default: the node's token).")
    ] = None,
    challenge_period: Annotated[
        int | None, typer.Option(min=10, help="Seconds (default: the node's).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open a channel with a peer and fund it on chain."""

    async def work(node: NodeClient) -> None:
        address: Address | str = peer
        reach = endpoint
        if peer.startswith(("http://", "https://")):
            async with NodeClient(peer) as other:
                theirs = await other.info()
            address, reach = theirs.address, endpoint or theirs.peer_endpoint
        info = await node.info()
        chosen = asset_address(asset, info.contracts.token, info.contracts.token_symbol)
        with _busy("opening the channel on chain …", as_json):
            channel = await node.open_channel(
                address,
                deposit,
                endpoint=reach,
                asset=chosen,
                peer_deposit=peer_deposit,
                challenge_period=challenge_period,
            )
        if as_json:
            emit(channel)
        else:
            _show(channel, "channel opened")

    call(url, token, work, as_json=as_json)


@channel_app.command("list")
def list_channels(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Every channel of the node (ids are cut; commands accept the prefix shown)."""

    async def work(node: NodeClient) -> None:
        channels = await node.channels()
        if as_json:
            emit({"channels": channels})
            return
        if not channels:
            console.print("no channels")
            return
        shown = table(
            f"{len(channels)} channel(s)",
            keep="id peer phase",
            numbers="mine peer's sent received",
        )
        for c in channels:
            shown.add_row(
                short(c.channel_id),
                short(c.peer.checksum),
                c.phase,
                str(c.balance_mine),
                str(c.balance_peer),
                str(c.sent_total),
                str(c.received_total),
            )
        console.print(shown)

    call(url, token, work, as_json=as_json)


@channel_app.command("show")
def show_channel(
    channel: ChannelArg,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """One channel in full."""

    async def work(node: NodeClient) -> None:
        view = await node.channel(await channel_id_of(node, channel))
        if as_json:
            emit(view)
        else:
            _show(view)

    call(url, token, work, as_json=as_json)


@channel_app.command("pay")
def pay(
    channel: ChannelArg,
    amount: Annotated[int, typer.Argument(min=1, help="Per payment, in the smallest unit.")],
    count: Annotated[int, typer.Option(min=1, help="Make this many payments, one by one.")] = 1,
    wait: Annotated[
        bool, typer.Option(help="Answer each payment once the payee holds it durably.")
    ] = True,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pay the peer over the channel, `--count` times; a progress bar shows the stream."""

    async def work(node: NodeClient) -> None:
        channel_id = await channel_id_of(node, channel)
        made: list[PaymentMade] = []
        progress = Progress(
            TextColumn("paying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[paid]} paid"),
            TimeElapsedColumn(),
            console=err_console,
            disable=as_json or count == 1,
        )
        with progress:
            task = progress.add_task("pay", total=count, paid=0)
            for _ in range(count):
                made.append(await node.pay(channel_id, amount, wait=wait))
                progress.update(task, advance=1, paid=amount * len(made))
        last = made[-1]
        summary = {
            "channel_id": channel_id,
            "payments": len(made),
            "amount": str(amount * len(made)),
            "sent_total": str(last.sent_total),
            "seq": last.seq,
            "acknowledged": sum(p.acknowledged for p in made),
        }
        if as_json:
            emit(summary)
        else:
            console.print(
                f"paid {amount * len(made)} in {len(made)} payment(s) on {short(channel_id)}; "
                f"{summary['acknowledged']} acknowledged, {last.sent_total} sent in all"
            )

    call(url, token, work, as_json=as_json)


@channel_app.command("close")
def close(
    channel: ChannelArg,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close cooperatively (unilaterally if the peer does not answer) and settle on chain."""

    async def work(node: NodeClient) -> None:
        channel_id = await channel_id_of(node, channel)
        with _busy(f"closing {escape(short(channel_id))} on chain …", as_json):
            view = await node.close_channel(channel_id)
        if as_json:
            emit(view)
        else:
            _show(view, "channel closed")

    call(url, token, work, as_json=as_json)
