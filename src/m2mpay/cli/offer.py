"""`m2mpay offer list|publish|withdraw|sell-by-transfer|transfers`: a node's storefront, and
its offers sold to plain on-chain transfers."""

from __future__ import annotations

import string
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, cast

import typer
from rich.markup import escape

from m2mpay.cli.common import BatchOption, DevicePriceOption, WindowOption, console
from m2mpay.cli.device import device_id_of
from m2mpay.cli.remote import (
    ADDRESS_LENGTH,
    Remote,
    asset_named,
    is_full_id,
    kv_table,
    remote_command,
    resolve_id,
    short,
    table,
)
from m2mpay.cli.units import Units, local_time
from m2mpay.client import NodeClient, OfferView, TransferSaleList, TransferTermsView
from m2mpay.crypto import Address
from m2mpay.errors import M2MPayError

__all__ = ["offer_app", "offer_table", "pick_offer"]

offer_app = typer.Typer(help="Offers: what a node sells, and at what price.", no_args_is_help=True)

OfferArg = Annotated[
    str, typer.Argument(help="The offer id (0x…), or a unique prefix of it as listed.")
]


def pick_offer(offers: Sequence[OfferView], given: str) -> OfferView:
    """The offer `given` names (a full id or a prefix) among `offers`."""
    wanted = resolve_id(given, [o.offer_id for o in offers], "offer").lower()
    for offer in offers:
        if offer.offer_id.lower() == wanted:
            return offer
    raise M2MPayError(f"no offer {given} in the storefront")


def offer_table(offers: Sequence[OfferView], title: str, units: Units) -> None:
    if not offers:
        console.print(f"{title}: no offers")
        return
    shown = table(title, keep="id service units leader valid_for", numbers="price window batch")
    assets = {o.asset for o in offers}
    one_asset = len(assets) == 1  # the usual case: the asset said once, in the caption
    if one_asset:
        shown.caption = f"prices per unit, in {escape(units.name(assets.pop()))}"
    now_ms = int(time.time() * 1000)
    for o in offers:
        left_s = max(0, (o.valid_until_ms - now_ms) // 1000)
        shown.add_row(
            short(o.offer_id),
            escape(f"{o.kind}, {o.unit}"),
            f"{o.min_units}–{o.max_units or '∞'}",
            o.leader,
            _duration(left_s),
            escape(units.number(o.price, o.asset) if one_asset else units.amount(o.price, o.asset)),
            str(o.window),
            str(o.batch),
        )
    console.print(shown)


def _duration(seconds: int) -> str:
    if seconds >= 2 * 86_400:
        return f"{seconds // 86_400} d"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


@remote_command(offer_app, "list")
def list_offers(remote: Remote) -> None:
    """The node's storefront (public: any node's URL will do, no token needed)."""

    remote.answer_in_units(
        lambda node: node.offers(),
        lambda offers, units: offer_table(offers, f"offers at {remote.url}", units),
        key="offers",
    )


Kind = Literal["energy", "actuation", "data"]


def _is_id_prefix(text: str) -> bool:
    digits = text[2:] if text.lower().startswith("0x") else text
    return len(text) < ADDRESS_LENGTH and all(c in string.hexdigits for c in digits)


@dataclass(frozen=True, slots=True)
class _Sold:
    """What an offer sells: `device/service` by the device's whole id where the node was
    asked, and the terms, the device's where the command line left them out."""

    device: str
    kind: Kind
    unit: str
    price: int
    asset: Address | None  # None: the node's token


async def _sold(
    node: NodeClient, device: str, kind: Kind | None, unit: str | None, price: int | None
) -> _Sold:
    given, _, service = device.partition("/")
    if not _is_id_prefix(given) and service and kind and unit and price:
        return _Sold(device, kind, unit, price, None)  # nothing to ask: the node judges it
    device_id = await device_id_of(node, given)
    registered = (await node.device(device_id)).services
    if not service and len(registered) == 1:
        service = registered[0].name
    found = [s for s in registered if s.name == service]
    if not found:
        what = f"no service {service!r}" if service else "several services"
        names = ", ".join(s.name for s in registered) or "none"
        raise M2MPayError(
            f"device {device_id[:10]} has {what} (it registered: {names}): "
            f"give --device {device_id[:10]}/SERVICE"
        )
    terms = found[0]
    return _Sold(
        f"{device_id}/{service}",
        kind or cast(Kind, terms.kind),
        unit or terms.unit,
        price or terms.price,
        Address(terms.asset),
    )


@remote_command(offer_app, "publish")
def publish(
    device: Annotated[
        str,
        typer.Option(
            help="The registered device's service that delivers: DEVICE/SERVICE, the device "
            "by its id or a unique prefix, the service left out when it has one."
        ),
    ],
    window: WindowOption,
    kind: Annotated[
        Kind | None, typer.Option(help="What is sold (default: as the device registered).")
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(help="The unit metered: Wh, s, message… (default: the device's)."),
    ] = None,
    price: DevicePriceOption = None,
    batch: BatchOption = 1,
    leader: Annotated[
        Literal["deliverer", "payer"], typer.Option(help="Who moves first in each batch.")
    ] = "deliverer",
    asset: Annotated[
        str | None,
        typer.Option(
            help="Token address or symbol (default: the device's, else the node's token)."
        ),
    ] = None,
    min_units: Annotated[int, typer.Option(min=0)] = 0,
    max_units: Annotated[int, typer.Option(min=0, help="0: no limit.")] = 0,
    reverse_price: Annotated[
        int, typer.Option(min=0, help="Paid per unit fed back; 0: not offered.")
    ] = 0,
    valid_for: Annotated[int, typer.Option(min=1, help="Seconds the offer stands.")] = 86_400,
    *,
    remote: Remote,
) -> None:
    """Sell a registered device's service under an offer; its kind, unit, price and
    asset are the device's unless given."""

    async def published(node: NodeClient) -> OfferView:
        sold = await _sold(node, device, kind, unit, price)
        return await node.publish_offer(
            kind=sold.kind,
            unit=sold.unit,
            price=sold.price,
            window=window,
            device=sold.device,
            batch=batch,
            leader=leader,
            asset=await asset_named(node, asset) or sold.asset,
            min_units=min_units,
            max_units=max_units,
            reverse_price=reverse_price,
            valid_for_s=valid_for,
        )

    def said(offer: OfferView, units: Units) -> None:
        kv_table(
            "offer published",
            [
                ("id", offer.offer_id),
                ("sells", f"{offer.kind} by the {offer.unit}"),
                ("price", units.price(offer.price, offer.unit, offer.asset)),
                ("asset", offer.asset.checksum),
                ("window", f"{offer.window} {offer.unit}"),
                ("valid until", local_time(offer.valid_until_ms)),
            ],
        )

    remote.answer_in_units(published, said)


@remote_command(offer_app, "withdraw")
def withdraw(offer: OfferArg, *, remote: Remote) -> None:
    """Take an offer out of the storefront (running sessions go on)."""

    async def withdrawn(node: NodeClient) -> dict[str, str | bool]:
        offer_id = offer if is_full_id(offer) else pick_offer(await node.offers(), offer).offer_id
        await node.withdraw_offer(offer_id)
        return {"offer_id": offer_id, "withdrawn": True}

    remote.answer(
        withdrawn,
        lambda done: console.print(f"withdrew offer {done['offer_id']}"),
    )


ChangeWord = Literal["keep", "credit"]


@remote_command(offer_app, "sell-by-transfer")
def sell_by_transfer(
    offer: OfferArg,
    confirmations: Annotated[
        int, typer.Option(min=1, max=64, help="Blocks a transfer needs, its own included.")
    ] = 3,
    underpay: Annotated[
        ChangeWord,
        typer.Option(help="Less than the offer's minimum: the owner keeps it, or credit it."),
    ] = "keep",
    overpay: Annotated[
        ChangeWord,
        typer.Option(help="Past whole units or the maximum: the owner keeps it, or credit it."),
    ] = "keep",
    *,
    remote: Remote,
) -> None:
    """Let a plain transfer of the offer's token to its device's address buy units at
    the offer's price, counted once it has its confirmations (once only, restarts and
    reorganisations included)."""

    async def enabled(node: NodeClient) -> TransferTermsView:
        offer_id = offer if is_full_id(offer) else pick_offer(await node.offers(), offer).offer_id
        return await node.sell_by_transfer(
            offer_id, confirmations=confirmations, underpay=underpay, overpay=overpay
        )

    def said(terms: TransferTermsView, units: Units) -> None:
        kv_table(
            "sold by transfer",
            [
                ("offer", terms.offer_id),
                ("send to", terms.device_id.checksum),
                ("token", terms.token.checksum),
                ("price", units.amount(terms.price, terms.token) + " a unit"),
                ("confirmations", terms.confirmations),
                ("underpay, overpay", f"{terms.underpay}, {terms.overpay}"),
                ("from block", terms.from_block),
            ],
        )

    remote.answer_in_units(enabled, said)


@remote_command(offer_app, "transfers")
def transfers(remote: Remote) -> None:
    """Every transfer counted as a purchase: what it paid, bought and delivered."""

    def shown(sales: TransferSaleList, units: Units) -> None:
        if not sales.purchases:
            console.print("no transfers counted")
            return
        rows = table("transfers counted", keep="purchase sender block", numbers="amount units lit")
        for p in sales.purchases:
            token = next((s.token for s in sales.sales if s.offer_id == p.offer_id), None)
            rows.add_row(
                short(p.purchase_id),
                short(p.sender.checksum),
                str(p.block_number),
                escape(units.amount(p.amount, token)),
                str(p.units),
                f"{p.delivered}{'' if p.done else ' …'}",
            )
        console.print(rows)

    remote.answer_in_units(lambda node: node.transfer_sales(), shown)
