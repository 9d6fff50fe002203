"""`m2mpay registry …`: services listed on chain through a running node: list one of
the node's offers (or explicit terms), find services by kind, place, price and score,
show one (and check the offer its endpoint serves), withdraw, rate a session, scores."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.markup import escape

from m2mpay.cli.common import console
from m2mpay.cli.remote import Remote, busy, id_of, kv_table, remote_command, short
from m2mpay.cli.session import session_id_of
from m2mpay.cli.units import Units
from m2mpay.client import ListedServiceView, NodeClient, OfferCheckView, RatingView, ScoreView

__all__ = ["registry_app"]

registry_app = typer.Typer(
    help="The service registry on chain: listings, discovery, ratings.", no_args_is_help=True
)

ListingArg = Annotated[int, typer.Argument(min=1, help="The listing's id, as `find` shows it.")]
LocationOption = Annotated[
    str, typer.Option("--location", help="Where the service is: a geohash (e.g. u09tvw0).")
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        help="The storefront's URL buyers fetch the offer from (default: the node's API)."
    ),
]
KindOption = Annotated[
    str | None, typer.Option(help="energy, actuation, data, compute, storage, mobility.")
]


def _score(score: ScoreView) -> str:
    if score.average is None:
        return "unrated"
    return f"{score.average} ({score.ratings} rating{'s' if score.ratings != 1 else ''})"


def _show(view: ListedServiceView, units: Units) -> None:
    kv_table(
        f"listing {view.listing_id}",
        [
            ("provider", view.provider.checksum),
            ("kind", view.kind),
            ("price", f"{units.amount(view.price, view.asset)} / {view.unit}"),
            ("endpoint", view.endpoint),
            ("location", view.location or None),
            ("watcher", view.watcher.checksum if view.watcher else None),
            ("score", _score(view.score)),
            ("listed / updated in block", f"{view.listed_block} / {view.updated_block}"),
        ],
    )


def _show_check(check: OfferCheckView, units: Units) -> None:
    _show(check.listing, units)
    if check.matches:
        console.print(
            f"[green]the offer at the endpoint matches[/] ({short(check.offer.offer_id)}; "
            f"wire {check.peer_endpoint})"
            if check.offer
            else "[green]matches[/]"
        )
        return
    console.print("[bold red]the offer at the endpoint does not match the listing:[/]")
    for difference in check.differences:
        console.print(f"  - {escape(difference)}")


async def _offer_id(node: NodeClient, given: str) -> str:
    return await id_of(given, "offer", node.offers, key=lambda o: o.offer_id)


@remote_command(registry_app, "list")
def list_service(
    offer: Annotated[
        str | None, typer.Option(help="List this offer of the node's (its id, or a prefix).")
    ] = None,
    kind: KindOption = None,
    unit: Annotated[str | None, typer.Option(help="Without --offer: Wh, s, message…")] = None,
    price: Annotated[
        int | None, typer.Option(min=0, help="Without --offer: per unit, smallest unit.")
    ] = None,
    location: LocationOption = "",
    endpoint: EndpointOption = None,
    watcher: Annotated[str | None, typer.Option(help="The watcher's address.")] = None,
    *,
    remote: Remote,
) -> None:
    """List a service in the registry, from the node's key."""

    async def listed(node: NodeClient) -> ListedServiceView:
        offer_id = None if offer is None else await _offer_id(node, offer)
        with busy("listing on chain", remote.as_json):
            return await node.list_service(
                offer_id=offer_id,
                kind=kind,
                unit=unit,
                price=price,
                location=location,
                endpoint=endpoint,
                watcher=watcher,
            )

    remote.answer_in_units(listed, _show)


@remote_command(registry_app, "find")
def find(
    kind: KindOption = None,
    near: Annotated[str | None, typer.Option(help="A geohash: nearest first.")] = None,
    max_price: Annotated[int | None, typer.Option(min=0, help="Smallest unit.")] = None,
    asset: Annotated[str | None, typer.Option(help="Only listings in this token.")] = None,
    min_score: Annotated[float | None, typer.Option(min=1, max=5)] = None,
    sort: Annotated[
        Literal["price", "score", "distance"] | None, typer.Option(help="price, score, distance.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    *,
    remote: Remote,
) -> None:
    """Services in the registry: nearest first with --near, else cheapest first."""

    async def found(node: NodeClient) -> list[ListedServiceView]:
        return await node.find_services(
            kind=kind,
            near=near,
            max_price=max_price,
            asset=asset,
            min_score=min_score,
            sort=sort,
            limit=limit,
        )

    def row(view: ListedServiceView, units: Units) -> list[str]:
        return [
            str(view.listing_id),
            short(view.provider.checksum),
            view.kind,
            f"{units.amount(view.price, view.asset)} / {escape(view.unit)}",
            view.location or "—",
            "—" if view.distance_m is None else f"{view.distance_m / 1000:.1f} km",
            _score(view.score),
            escape(view.endpoint),
        ]

    remote.answer_list(
        "service",
        found,
        row,
        keep="id provider kind",
        fold="price place distance score endpoint",
    )


@remote_command(registry_app, "show")
def show(
    listing: ListingArg,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Fetch the offer from the listing's endpoint and check it."),
    ] = False,
    *,
    remote: Remote,
) -> None:
    """One listing; with --verify, the offer its endpoint serves checked against it."""
    if verify:
        remote.answer_in_units(lambda node: node.check_offer(listing), _show_check)
    else:
        remote.answer_in_units(lambda node: node.service(listing), _show)


@remote_command(registry_app, "withdraw")
def withdraw(listing: ListingArg, *, remote: Remote) -> None:
    """Withdraw one of the node's listings."""

    async def gone(node: NodeClient) -> dict[str, object]:
        with busy("withdrawing on chain", remote.as_json):
            await node.withdraw_service(listing)
        return {"listing_id": listing, "withdrawn": True}

    remote.answer(gone, lambda _: console.print(f"listing {listing} withdrawn"))


@remote_command(registry_app, "rate")
def rate(
    session: Annotated[str, typer.Argument(help="A stopped session of the node's (id or prefix).")],
    rating: Annotated[int, typer.Argument(min=1, max=5, help="1 to 5.")],
    *,
    remote: Remote,
) -> None:
    """Rate the other party of a session, with its countersigned receipt."""

    async def rated(node: NodeClient) -> RatingView:
        session_id = await session_id_of(node, session)
        with busy("rating on chain", remote.as_json):
            return await node.rate(session_id, rating)

    def said(view: RatingView, units: Units) -> None:
        console.print(
            f"rated {view.rated.checksum} {view.rating}/5 for a session that paid "
            f"{units.amount(view.paid, view.score.asset)}; its score: {_score(view.score)}"
        )

    remote.answer_in_units(rated, said)


@remote_command(registry_app, "score")
def score(
    address: Annotated[str, typer.Argument(help="The party's address.")],
    *,
    remote: Remote,
) -> None:
    """A party's reputation in each asset it was rated in."""

    def row(view: ScoreView, units: Units) -> list[str]:
        return [
            units.name(view.asset),
            view.average or "unrated",
            str(view.ratings),
            units.amount(view.value, view.asset),
        ]

    remote.answer_list(
        "score",
        lambda node: node.scores(address),
        row,
        keep="asset average ratings",
        numbers="value_rated",
    )
