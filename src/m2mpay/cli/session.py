"""`m2mpay session …`: buy under a seller's offer, watch, steer and stop metered sessions."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from m2mpay.cli.channel import channel_id_of
from m2mpay.cli.common import err_console
from m2mpay.cli.offer import pick_offer
from m2mpay.cli.remote import (
    Remote,
    busy,
    emit,
    id_of,
    kv_table,
    on_named,
    remote_command,
    short,
)
from m2mpay.cli.units import Units, local_time
from m2mpay.client import FlowView, NodeClient, ReceiptView, SessionView
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError

__all__ = ["follow", "session_app", "session_id_of"]

session_app = typer.Typer(help="Metered sessions bought or sold by a node.", no_args_is_help=True)

SessionArg = Annotated[
    str, typer.Argument(help="The session id (0x…), or a unique prefix of it as listed.")
]
IntervalOption = Annotated[
    float, typer.Option(min=0.05, help="Seconds between looks at the session.")
]


async def session_id_of(node: NodeClient, given: str) -> str:
    """The full id of the session `given` names (a full id, or a prefix)."""
    return await id_of(given, "session", node.sessions, key=lambda s: s.session_id)


def _flow(flow: FlowView, units: Units, asset: Address) -> str:
    worth, paid = units.amount(flow.value, asset), units.amount(flow.paid, asset)
    return f"{flow.units} units worth {worth}, {paid} paid"


def _times(started_ms: int, stopped_ms: int) -> str:
    return f"{local_time(started_ms)} / {local_time(stopped_ms) if stopped_ms else 'running'}"


# A session's amounts are in its channel's asset, the offer's.
def _show(view: SessionView, units: Units, title: str = "session") -> None:
    kv_table(
        title,
        [
            ("id", view.session_id),
            ("offer", view.offer_id),
            ("channel", view.channel_id),
            ("peer", view.peer.checksum),
            ("role", view.role),
            ("phase", view.phase),
            ("price / unit", units.amount(view.price, view.asset)),
            ("reversed", view.reversed),
            ("forward", _flow(view.forward, units, view.asset)),
            ("backward", _flow(view.backward, units, view.asset)),
            ("started / stopped", _times(view.started_ms, view.stopped_ms)),
            ("stopped", view.stop_reason if view.stopped else "no"),
            ("countersigned", view.countersigned),
        ],
    )


def _row(view: SessionView, units: Units) -> list[str]:
    return [
        short(view.session_id),
        short(view.peer.checksum),
        view.role,
        view.phase,
        escape(view.stop_reason),
        units.amount(view.price, view.asset),
        str(view.forward.units),
        units.amount(view.forward.paid, view.asset),
    ]


async def follow(
    node: NodeClient,
    session_id: str,
    *,
    target_units: int = 0,
    interval: float = 0.5,
    quiet: bool = False,
    units: Units | None = None,
) -> SessionView:
    """Show units delivered and tokens paid (forward: in the session's asset as `units`
    names it, else in its smallest unit) until the session stops."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f} units"),
        TextColumn("{task.fields[paid]} paid"),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
    )
    with progress:
        task = progress.add_task(f"session {short(session_id)}", total=target_units or None, paid=0)
        while True:
            view = await node.session(session_id)
            paid = view.forward.paid
            shown = units.amount(paid, view.asset) if units is not None else str(paid)
            progress.update(task, completed=view.forward.units, paid=shown)
            if view.stopped:
                return view
            await asyncio.sleep(interval)


@remote_command(session_app, "start")
def start(
    offer: Annotated[
        str, typer.Argument(help="The offer id in the seller's storefront (or a prefix).")
    ],
    seller: Annotated[
        str, typer.Option(help="The seller node's API URL: the offer and its wire come from it.")
    ],
    deposit: Annotated[
        int, typer.Option(min=0, help="Open a channel with this deposit if none is free.")
    ] = 0,
    budget: Annotated[int, typer.Option(min=0, help="The most to pay; 0: no limit.")] = 0,
    target_units: Annotated[
        int, typer.Option(min=0, help="Stop once delivered; 0: no target.")
    ] = 0,
    limit_price: Annotated[
        int | None, typer.Option(min=0, help="The highest price per unit accepted.")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(help="Use this channel (default: a free one, or a new one).")
    ] = None,
    allow_reverse: Annotated[
        bool, typer.Option(help="Let the seller switch the direction of supply.")
    ] = False,
    follow_it: Annotated[
        bool, typer.Option("--follow", help="Show progress until the session stops.")
    ] = False,
    interval: IntervalOption = 0.5,
    *,
    remote: Remote,
) -> None:
    """Buy under a seller's offer: this node pays the seller as the service is delivered."""

    async def started(node: NodeClient) -> SessionView:
        async with NodeClient(seller) as shop:
            offers, theirs, ours = await asyncio.gather(shop.offers(), shop.info(), node.info())
        if theirs.genesis_hash != ours.genesis_hash:
            raise M2MPayError(
                f"the seller at {seller} is on another chain: {theirs.chain} with genesis "
                f"{theirs.genesis_hash}, this node {ours.chain} with genesis {ours.genesis_hash}"
                " (start the nodes on one chain: the same --chain-dir or --rpc-url)"
            )
        chosen = pick_offer(offers, offer)
        view = await node.start_session(
            chosen,
            endpoint=theirs.peer_endpoint,
            channel_id=await channel_id_of(node, channel) if channel else None,
            deposit=deposit,
            budget=budget,
            target_units=target_units,
            limit_price=limit_price,
            allow_reverse=allow_reverse,
        )
        if follow_it:
            view = await follow(
                node,
                view.session_id,
                target_units=target_units,
                interval=interval,
                quiet=remote.as_json,
                units=await Units.load(node),
            )
        return view

    def said(view: SessionView, units: Units) -> None:
        _show(view, units, "session stopped" if view.stopped else "session started")
        if not view.stopped:
            # A unique prefix is enough for the commands (see `id_of`).
            prefix = view.session_id[:12]
            err_console.print(
                f"follow it: m2mpay session watch {prefix}   stop it: m2mpay session stop {prefix}",
                soft_wrap=True,
                highlight=False,
            )

    remote.answer_in_units(started, said)


@remote_command(session_app, "watch")
def watch(
    session: SessionArg,
    interval: IntervalOption = 0.5,
    *,
    remote: Remote,
) -> None:
    """Show a session's progress until it stops (Ctrl-C leaves it running)."""

    async def followed(node: NodeClient, session_id: str) -> SessionView:
        units = await Units.load(node)
        return await follow(node, session_id, interval=interval, quiet=remote.as_json, units=units)

    remote.answer_in_units(
        on_named(session, session_id_of, followed),
        lambda view, units: _show(view, units, "session stopped"),
    )


@remote_command(session_app, "list")
def list_sessions(remote: Remote) -> None:
    """Every session of the node, bought or sold."""
    remote.answer_list(
        "session",
        lambda node: node.sessions(),
        _row,
        keep="id peer role phase",
        fold="stop_reason",
        numbers="price units paid",
    )


@remote_command(session_app, "show")
def show(session: SessionArg, *, remote: Remote) -> None:
    """One session in full."""

    remote.answer_in_units(on_named(session, session_id_of, lambda node, s: node.session(s)), _show)


def _show_receipt(receipt: ReceiptView, units: Units, asset: Address) -> None:
    kv_table(
        "receipt",
        [
            ("session", receipt.session_id),
            ("channel", receipt.channel_id),
            ("forward", _flow(receipt.forward, units, asset)),
            ("backward", _flow(receipt.backward, units, asset)),
            ("started / stopped", _times(receipt.started_ms, receipt.stopped_ms)),
            ("signature", receipt.signature),
        ],
    )


@remote_command(session_app, "receipt")
def receipt(session: SessionArg, *, remote: Remote) -> None:
    """Our signed receipt of a stopped session."""

    async def work(node: NodeClient) -> None:
        session_id = await session_id_of(node, session)
        if remote.as_json:
            emit(await node.receipt(session_id))
            return
        # The receipt names no asset: the session's (its channel's) says how to read it.
        receipt, view, units = await asyncio.gather(
            node.receipt(session_id), node.session(session_id), Units.load(node)
        )
        _show_receipt(receipt, units, view.asset)

    remote.call(work)


@remote_command(session_app, "stop")
def stop(
    session: SessionArg,
    reason: Annotated[str, typer.Option(help="Told to the peer.")] = "stopped through the CLI",
    wait: Annotated[bool, typer.Option(help="Return once the receipt is signed.")] = True,
    *,
    remote: Remote,
) -> None:
    """Stop a session; both sides sign a receipt of what was delivered and paid."""

    async def stopped(node: NodeClient, session_id: str) -> SessionView:
        with busy("stopping; waiting for the receipt …", remote.as_json):
            return await node.stop_session(session_id, reason=reason, wait=wait)

    remote.answer_in_units(
        on_named(session, session_id_of, stopped),
        lambda view, units: _show(view, units, "session stopped"),
    )


@remote_command(session_app, "price")
def price(
    session: SessionArg,
    new_price: Annotated[int, typer.Argument(min=1, help="Per unit, in the smallest unit.")],
    *,
    remote: Remote,
) -> None:
    """A seller's new price for the units not yet delivered."""

    repriced = on_named(session, session_id_of, lambda node, s: node.set_price(s, new_price))
    remote.answer_in_units(repriced, _show)


@remote_command(session_app, "reverse")
def reverse(
    session: SessionArg,
    back: Annotated[
        bool, typer.Option("--back", help="Switch back to the offer's own direction.")
    ] = False,
    *,
    remote: Remote,
) -> None:
    """Switch the direction of supply (and of payment): the buyer feeds back."""

    turned = on_named(session, session_id_of, lambda node, s: node.reverse(s, not back))
    remote.answer_in_units(turned, _show)
