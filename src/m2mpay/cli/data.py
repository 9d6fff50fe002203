"""`m2mpay data feeds|publish|retire|buy|extend|grants`: live MQTT data sold by the second.

A seller publishes a device's feed (`data publish`) and gets the device's MQTT
credentials once, with the `m2mpay device run plug` command that uses them; a buyer's
node buys seconds of it (`data buy`) and gets its own credentials once, with a ready
`mosquitto_sub` command. Passwords are printed in these two answers only (and in
their `--json`); `--save-password` writes one to a file of the owner's only instead.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from m2mpay.cli.common import console
from m2mpay.cli.remote import (
    Remote,
    emit,
    id_of,
    kv_table,
    listing,
    on_named,
    remote_command,
    resolve_id,
    short,
)
from m2mpay.cli.units import Units, local_time
from m2mpay.client import (
    FeedPublished,
    FeedView,
    GrantBought,
    GrantView,
    NodeClient,
)
from m2mpay.errors import M2MPayError

__all__ = ["data_app", "mosquitto_sub_command", "plug_command"]

data_app = typer.Typer(
    help="Live MQTT data sold by the second: feeds, and grants to read them.",
    no_args_is_help=True,
)

SavePasswordOption = Annotated[
    Path | None,
    typer.Option(
        help="Write the password to this new file (mode 0600) instead of printing it.",
    ),
]


def _seconds(minutes: int | None, seconds: int | None) -> int:
    if (minutes is None) == (seconds is None):
        raise M2MPayError("give --minutes or --seconds (one of them)")
    return minutes * 60 if minutes is not None else seconds or 0


def _amount(minutes: int | None, seconds: int | None, messages: int | None) -> dict[str, int]:
    """What a purchase or extension asks for: seconds, or messages of a feed sold so."""
    if messages is not None:
        if minutes is not None or seconds is not None:
            raise M2MPayError("give --messages, or --minutes or --seconds (one of them)")
        return {"messages": messages}
    return {"seconds": _seconds(minutes, seconds)}


def _save_password(path: Path, password: str) -> None:
    """The password in a new file only its owner reads."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise M2MPayError(f"cannot make {path}: {exc.strerror} (give a new file)") from None
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")


def plug_command(published: FeedPublished, password_file: Path | str) -> str:
    """The `m2mpay device run plug` command that publishes the feed of `published`."""
    device = published.device
    return shlex.join(
        [
            "m2mpay", "device", "run", "plug", "--name", published.feed.device_id,
            "--broker", f"{device.host}:{device.port}", "--username", device.username,
            "--password-file", str(password_file),
        ]
    )  # fmt: skip


def mosquitto_sub_command(bought: GrantBought, password: str | None = None) -> str:
    """The `mosquitto_sub` command that reads the live topic of `bought` (its password,
    or `password` in its place, e.g. a shell expansion)."""
    words = [
        "mosquitto_sub", "-h", bought.host, "-p", str(bought.port), "-u", bought.username,
        "-P", bought.password, "-t", bought.grant.live_topic, "-q", "1", "-v",
    ]  # fmt: skip
    if bought.client_id is not None:
        # By the message: the persistent session the seller opened holds what is counted.
        words += ["-i", bought.client_id, "-c"]
    command = shlex.join(words)
    if password is not None:  # after quoting: the expansion must stay one for the shell
        command = command.replace(shlex.quote(bought.password), password)
    return command


def _feed_row(feed: FeedView, units: Units) -> Sequence[str]:
    if feed.unit == "message" and feed.price_per_message is not None:
        price = f"{units.amount(feed.price_per_message, feed.asset)} a message"
        bounds = "by the message"
    else:
        price = units.amount(feed.price_per_hour, feed.asset)
        bounds = f"{feed.min_seconds}–{feed.max_seconds} s"
    return [
        short(feed.feed_id),
        escape(feed.device_id),
        price,
        bounds,
        feed.broker,
        escape(feed.live_topic),
    ]


@remote_command(data_app, "feeds")
def feeds(
    seller: Annotated[
        str | None,
        typer.Option(help="Another node's API URL: its storefront (default: this node's)."),
    ] = None,
    *,
    remote: Remote,
) -> None:
    """The feeds a node sells: the paid live topic, the price per hour, the broker."""
    where = seller or remote.url

    async def work(node: NodeClient) -> None:
        async def show(shop: NodeClient) -> None:
            found = await shop.feeds()
            if remote.as_json:
                emit({"feeds": found})
                return
            listing(
                "feed",
                found,
                lambda f: _feed_row(f, units),
                title=f"{len(found)} feed(s) at {where}",
                empty=f"no feeds at {where}",
                keep="id device price_per_hour seconds broker",
                fold="live_topic",
            )

        if seller is None:
            units = await Units.load(node)
            await show(node)
            return
        async with NodeClient(seller) as shop:
            units = await Units.load(shop)
            await show(shop)

    remote.call(work)


@remote_command(data_app, "publish")
def publish(
    device: Annotated[
        str, typer.Argument(help="The device id: its topics are m2m/DEVICE/live and /1m.")
    ],
    price_per_hour: Annotated[
        int, typer.Option(min=1, help="Per hour of live data, in the token's smallest unit.")
    ],
    min_seconds: Annotated[
        int, typer.Option("--min", min=1, help="The shortest purchase, in seconds.")
    ] = 60,
    max_seconds: Annotated[
        int, typer.Option("--max", min=1, help="The longest purchase, in seconds.")
    ] = 86_400,
    price_per_message: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Sell it by the message too, at this price a message (a second offer).",
        ),
    ] = None,
    save_password: SavePasswordOption = None,
    *,
    remote: Remote,
) -> None:
    """Sell a device's live data; prints the device's MQTT credentials once, and the
    command that runs a simulated plug with them."""

    async def work(node: NodeClient) -> None:
        published = await node.publish_feed(
            device,
            price_per_hour=price_per_hour,
            min_seconds=min_seconds,
            max_seconds=max_seconds,
            price_per_message=price_per_message,
        )
        if save_password is not None:
            _save_password(save_password, published.device.password)
        if remote.as_json:
            emit(published)
            return
        units = await Units.load(node)
        feed, client = published.feed, published.device
        kv_table(
            "feed published",
            [
                ("id", feed.feed_id),
                ("device", feed.device_id),
                ("price", f"{units.amount(feed.price_per_hour, feed.asset)} an hour"),
                ("seconds", f"{feed.min_seconds} to {feed.max_seconds}"),
                *_per_message_rows(published, units),
                ("live topic (paid)", feed.live_topic),
                ("free topic", feed.free_topic),
                ("broker", f"{client.host}:{client.port}"),
                ("device username", client.username),
                (
                    "device password",
                    f"in {save_password}" if save_password else f"{client.password} (shown once)",
                ),
            ],
        )
        file = save_password or "FILE_WITH_THE_PASSWORD"
        console.print("run the plug with them:", highlight=False)
        console.print(escape(plug_command(published, file)), highlight=False, soft_wrap=True)

    remote.call(work)


def _per_message_rows(published: FeedPublished, units: Units) -> list[tuple[str, str]]:
    offer = published.per_message
    if offer is None or offer.price_per_message is None:
        return []
    return [
        ("id by the message", offer.feed_id),
        ("price a message", units.amount(offer.price_per_message, offer.asset)),
    ]


def _pick_feed(found: Sequence[FeedView], given: str) -> FeedView:
    wanted = resolve_id(given, [f.feed_id for f in found], "feed").lower()
    return next(f for f in found if f.feed_id.lower() == wanted)


@remote_command(data_app, "buy")
def buy(
    seller: Annotated[str, typer.Argument(help="The seller node's API URL.")],
    feed: Annotated[
        str, typer.Argument(help="The feed's id in the seller's storefront (or a prefix).")
    ],
    minutes: Annotated[int | None, typer.Option(min=1, help="Minutes of live data.")] = None,
    seconds: Annotated[int | None, typer.Option(min=1, help="Or seconds of it.")] = None,
    messages: Annotated[
        int | None, typer.Option(min=1, help="Or messages of a feed sold by the message.")
    ] = None,
    deposit: Annotated[
        int, typer.Option(min=0, help="Open a channel to the seller with this if none is free.")
    ] = 0,
    username: Annotated[
        str | None, typer.Option(help="The MQTT username to read with (default: made up).")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="With --username: a file holding its password.")
    ] = None,
    save_password: SavePasswordOption = None,
    *,
    remote: Remote,
) -> None:
    """Buy read access to a seller's feed; prints the broker, the credentials (once)
    and a ready `mosquitto_sub` command."""
    wanted = _amount(minutes, seconds, messages)
    password = None
    if password_file is not None:
        password = password_file.read_text().strip()

    async def work(node: NodeClient) -> None:
        async with NodeClient(seller) as shop:
            chosen = _pick_feed(await shop.feeds(), feed)
        bought = await node.buy_grant(
            seller,
            chosen.feed_id,
            **wanted,
            deposit=deposit,
            username=username,
            password=password,
        )
        if save_password is not None:
            _save_password(save_password, bought.password)
        if remote.as_json:
            emit(bought)
            return
        units = await Units.load(node)
        _show_grant(bought.grant, units, "grant bought")
        kept = save_password or password_file  # the owner has it: not printed again
        if kept is not None:
            console.print(f"password: in {escape(str(kept))}", highlight=False)
            command = mosquitto_sub_command(bought, f'"$(cat {shlex.quote(str(kept))})"')
        else:
            console.print(f"password (shown once): {escape(bought.password)}", highlight=False)
            command = mosquitto_sub_command(bought)
        console.print("read it:", highlight=False)
        console.print(escape(command), highlight=False, soft_wrap=True)

    remote.call(work)


@remote_command(data_app, "retire")
def retire(
    feed: Annotated[str, typer.Argument(help="The feed's id, or a prefix of it as listed.")],
    *,
    remote: Remote,
) -> None:
    """Sell no more of a feed; the grants paid for run to their end, with live data."""

    async def retired(node: NodeClient) -> dict[str, str | bool]:
        chosen = _pick_feed(await node.feeds(), feed)
        await node.retire_feed(chosen.feed_id)
        return {"feed_id": chosen.feed_id, "retired": True}

    remote.answer(retired, lambda done: console.print(f"retired feed {done['feed_id']}"))


def _show_grant(grant: GrantView, units: Units, title: str) -> None:
    kv_table(
        title,
        [
            ("grant (session)", grant.session_id),
            ("role", grant.role),
            ("peer", grant.peer.checksum),
            ("feed", grant.feed_id),
            ("live topic", grant.live_topic),
            ("broker", grant.broker),
            ("username", grant.username),
            ("phase", grant.phase),
            ("messages", grant.messages) if grant.unit == "message" else ("seconds", grant.seconds),
            ("paid", units.amount(grant.paid, grant.asset)),
            ("paid until", local_time(grant.paid_until_ms or 0)),
        ],
    )


async def _grant_id(node: NodeClient, given: str) -> str:
    return await id_of(given, "grant", node.grants, key=lambda g: g.session_id)


@remote_command(data_app, "extend")
def extend(
    grant: Annotated[str, typer.Argument(help="The grant's id (its session's), or a prefix.")],
    minutes: Annotated[int | None, typer.Option(min=1, help="Minutes more.")] = None,
    seconds: Annotated[int | None, typer.Option(min=1, help="Or seconds more.")] = None,
    messages: Annotated[
        int | None, typer.Option(min=1, help="Or messages more (a feed by the message).")
    ] = None,
    *,
    remote: Remote,
) -> None:
    """Buy more of a grant this node bought: before its end, with no gap."""
    more = _amount(minutes, seconds, messages)

    remote.answer_in_units(
        on_named(grant, _grant_id, lambda node, g: node.extend_grant(g, **more)),
        lambda view, units: _show_grant(view, units, "extended"),
    )


def _grant_row(grant: GrantView, units: Units) -> Sequence[str]:
    return [
        short(grant.session_id),
        grant.role,
        escape(grant.device_id),
        escape(grant.username),
        grant.phase,
        local_time(grant.paid_until_ms or 0),
        f"{grant.messages} msg" if grant.unit == "message" else str(grant.seconds),
        units.amount(grant.paid, grant.asset),
    ]


@remote_command(data_app, "grants")
def grants(remote: Remote) -> None:
    """The grants this node bought, then those it sold (never a password); `--json`
    adds each one's peer, feed, broker and topic."""
    remote.answer_list(
        "grant",
        lambda node: node.grants(),
        _grant_row,
        # Columns in `table`'s order: kept whole, then folded, then numbers.
        keep="id role device username phase",
        fold="paid_until",
        numbers="seconds paid",
    )
