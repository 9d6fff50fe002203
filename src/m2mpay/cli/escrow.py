"""`m2mpay escrow open|list|show|claim|refund`: the metered escrow through a running node.

A buyer's node deposits a maximum for a seller (`open`); the seller's node claims with
its meter's signed final reading (`claim`: given as `--signature`, or signed here with
the meter's key from `$M2MPAY_METER_KEY`); after the deadline the buyer's node takes the
deposit back (`refund`). The contract's refusals print its reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Annotated, Final

import typer

from m2mpay.cli.remote import (
    Remote,
    id_of,
    kv_table,
    on_named,
    remote_command,
    short,
)
from m2mpay.cli.units import Units, local_time
from m2mpay.client import EscrowView, NodeClient, sign_meter_reading
from m2mpay.crypto import PrivateKey
from m2mpay.errors import CryptoError, M2MPayError

__all__ = ["METER_KEY_ENV", "escrow_app"]

METER_KEY_ENV: Final = "M2MPAY_METER_KEY"

escrow_app = typer.Typer(
    help="The metered escrow: a deposit for a seller, released by its meter's signed reading.",
    no_args_is_help=True,
)

EscrowArg = Annotated[str, typer.Argument(help="The escrow's id, or a prefix of it.")]


def _show(escrow: EscrowView, units: Units) -> None:
    rows: list[tuple[str, object]] = [
        ("id", escrow.escrow_id),
        ("state", escrow.state),
        ("this node", escrow.role),
        ("buyer", escrow.buyer.checksum),
        ("seller", escrow.seller.checksum),
        ("meter", escrow.meter.checksum),
        ("price", f"{units.amount(escrow.price, escrow.asset)} a unit"),
        ("deposit", units.amount(escrow.deposit, escrow.asset)),
        ("largest reading", escrow.max_reading),
        ("deadline", local_time(escrow.deadline * 1000)),
        ("may now", ", ".join(escrow.actions) or "nothing"),
    ]
    if escrow.outcome is not None:
        ended = escrow.outcome
        if ended.reading is not None:
            rows.append(("reading", ended.reading))
        rows += [
            ("paid to the seller", units.amount(ended.paid, escrow.asset)),
            ("back to the buyer", units.amount(ended.refunded, escrow.asset)),
            ("transaction", ended.tx_hash),
        ]
    kv_table(f"escrow {short(escrow.escrow_id)}", rows)


def _row(escrow: EscrowView, units: Units) -> Sequence[str]:
    return [
        short(escrow.escrow_id),
        escrow.state,
        escrow.role,
        short(escrow.seller.checksum if escrow.role == "buyer" else escrow.buyer.checksum),
        local_time(escrow.deadline * 1000),
        ", ".join(escrow.actions) or "—",
        units.amount(escrow.price, escrow.asset),
        units.amount(escrow.deposit, escrow.asset),
    ]


async def _escrow_id(node: NodeClient, given: str) -> str:
    return await id_of(given, "escrow", node.escrows, key=lambda e: e.escrow_id)


def _meter_key() -> PrivateKey:
    secret = os.environ.get(METER_KEY_ENV, "").strip()
    if not secret:
        raise M2MPayError(f"give --signature, or the meter's key in ${METER_KEY_ENV} to sign")
    try:
        return PrivateKey.from_hex(secret)
    except CryptoError as exc:
        raise M2MPayError(f"${METER_KEY_ENV}: {exc}") from None


@remote_command(escrow_app, "open")
def open_escrow(
    seller: Annotated[str, typer.Argument(help="The seller's address: paid reading x price.")],
    meter: Annotated[str, typer.Option(help="The meter's address: its signed reading pays.")],
    price: Annotated[int, typer.Option(min=1, help="Per unit, in the smallest unit.")],
    deposit: Annotated[int, typer.Option(min=1, help="The most this node pays.")],
    timeout: Annotated[
        int, typer.Option(min=1, help="Seconds the seller may claim in; a refund after.")
    ] = 3600,
    asset: Annotated[
        str | None, typer.Option(help="Token address (0x000…0: the native coin).")
    ] = None,
    *,
    remote: Remote,
) -> None:
    """Deposit a maximum for a seller at a price per unit, released by its meter."""
    remote.answer_in_units(
        lambda node: node.open_escrow(
            seller, meter, price=price, deposit=deposit, timeout_s=timeout, asset=asset
        ),
        _show,
    )


@remote_command(escrow_app, "list")
def list_escrows(*, remote: Remote) -> None:
    """The escrows this node is buyer or seller of."""
    remote.answer_list(
        "escrow",
        lambda node: node.escrows(),
        _row,
        keep="id state role peer",
        fold="deadline may_now",
        numbers="price deposit",
    )


@remote_command(escrow_app, "show")
def show_escrow(
    escrow: EscrowArg,
    *,
    remote: Remote,
) -> None:
    """One escrow: its terms, its state and what may be done now."""

    remote.answer_in_units(on_named(escrow, _escrow_id, lambda node, e: node.escrow(e)), _show)


@remote_command(escrow_app, "claim")
def claim(
    escrow: EscrowArg,
    reading: Annotated[int, typer.Option(min=0, help="The meter's final reading, in units.")],
    signature: Annotated[
        str | None,
        typer.Option(help=f"The meter's signature; without it, signed with ${METER_KEY_ENV}."),
    ] = None,
    *,
    remote: Remote,
) -> None:
    """Claim with the meter's signed final reading: reading x price to the seller."""
    key = None if signature is not None else _meter_key()

    async def fetch(node: NodeClient) -> EscrowView:
        escrow_id = await _escrow_id(node, escrow)
        signed = signature
        if key is not None:
            info = await node.info()
            contract = info.contracts.escrow
            if contract is None:
                raise M2MPayError("the node names no escrow contract in /v1/info")
            chain_id = int(info.chain.rpartition(":")[2])
            signed = sign_meter_reading(key, chain_id, contract, escrow_id, reading)
        assert signed is not None
        return await node.claim_escrow(escrow_id, reading, signed)

    remote.answer_in_units(fetch, _show)


@remote_command(escrow_app, "refund")
def refund(
    escrow: EscrowArg,
    *,
    remote: Remote,
) -> None:
    """After the deadline with no claim: the deposit back to the buyer."""

    refunded = on_named(escrow, _escrow_id, lambda node, e: node.refund_escrow(e))
    remote.answer_in_units(refunded, _show)
