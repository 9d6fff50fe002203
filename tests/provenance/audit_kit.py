"""A two-hop value chain written by `StreamWriter` for the audit tests: the turbine sells
to the charger, the charger resells to the car, each sale one stream, the charger's
linking the turbine's. Every reading is paid at once and each sale ends with a receipt
both parties signed, unless a test asks for a cheat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from m2mpay.crypto import (
    Address,
    PrivateKey,
    Signature,
    channel_domain,
    session_receipt_digest,
)
from m2mpay.provenance import (
    AccessMode,
    MeterRecord,
    MeterUnit,
    PaymentRecord,
    PriceRecord,
    ReceiptRecord,
    SessionRecord,
    StreamRecord,
    StreamStore,
    StreamWriter,
    Totals,
)
from tests.provenance.streams_kit import Clock

__all__ = [
    "CAR",
    "CHAIN_ID",
    "CHARGER",
    "HUB",
    "MINUTE",
    "PRICE_DOWN",
    "PRICE_UP",
    "START_MS",
    "TOKEN",
    "TURBINE",
    "Sale",
    "ValueChain",
    "charger_sale",
    "sale_records",
    "turbine_sale",
    "write_chain",
    "write_sale",
]

TURBINE: Final = PrivateKey(bytes(31) + b"\x21")
CHARGER: Final = PrivateKey(bytes(31) + b"\x22")
CAR: Final = PrivateKey(bytes(31) + b"\x23")
HUB: Final = Address(bytes([0x4B]) * 20)
TOKEN: Final = Address(bytes([0x70]) * 20)
CHAIN_ID: Final = 1337
PRICE_UP: Final = 10**12  # per Wh the charger pays the turbine
PRICE_DOWN: Final = 12 * 10**11  # per Wh the car pays the charger: 0.2e12 commission a Wh
MINUTE: Final = 60_000
START_MS: Final = 1_789_999_200_000  # 2026-09-21 14:00 UTC, on a quarter hour


@dataclass(frozen=True)
class Sale:
    """What a sale's stream says, to write it (`cheat` changes the records)."""

    seller: PrivateKey
    buyer: PrivateKey
    session: bytes
    channel: bytes
    price: int
    readings: Sequence[int]  # Wh per minute
    pay_ratio: tuple[int, int] = (1, 1)  # paid = metered × price × a / b
    receipt_units_extra: int = 0  # a receipt claiming more than was metered
    countersigned: bool = True
    hub: Address = HUB
    chain_id: int = CHAIN_ID


def _receipt(sale: Sale, units: int, value: int, paid: int, start: int, stop: int) -> ReceiptRecord:
    forward = Totals(units + sale.receipt_units_extra, value, paid)
    backward = Totals(0, 0, 0)
    digest = session_receipt_digest(
        channel_domain(sale.chain_id, sale.hub),
        sale.session,
        sale.channel,
        (forward.units, forward.value, forward.paid),
        (0, 0, 0),
        start,
        stop,
    )
    signers = (sale.seller, sale.buyer) if sale.countersigned else (sale.seller,)
    signatures: tuple[Signature, ...] = tuple(k.sign_digest(digest) for k in signers)
    return ReceiptRecord(
        sale.session,
        sale.channel,
        sale.chain_id,
        sale.hub,
        forward,
        backward,
        start,
        stop,
        signatures,
    )


def sale_records(sale: Sale) -> list[StreamRecord]:
    records: list[StreamRecord] = [
        SessionRecord(
            sale.session,
            sale.channel,
            sale.chain_id,
            sale.hub,
            sale.seller.address,
            sale.buyer.address,
            MeterUnit.WH,
        ),
        PriceRecord(MeterUnit.WH, sale.price, TOKEN),
    ]
    total = paid = value = 0
    for delta in sale.readings:
        total += delta
        value += delta * sale.price
        records.append(MeterRecord(MeterUnit.WH, delta, total, MINUTE))
        amount = delta * sale.price * sale.pay_ratio[0] // sale.pay_ratio[1]
        paid += amount
        records.append(PaymentRecord(sale.channel, sale.buyer.address, amount, paid))
    records.append(_receipt(sale, total, value, paid, START_MS, START_MS + MINUTE * 60))
    return records


async def write_sale(
    store: StreamStore,
    sale: Sale,
    *,
    links: Sequence[bytes] = (),
    access: AccessMode = AccessMode.PUBLIC,
    clock: Clock | None = None,
) -> StreamWriter:
    """The sale's stream, one message every half minute from START_MS on."""
    writer = await StreamWriter.create(
        store,
        sale.seller,
        purpose="metered session",
        access=access,
        links=links,
        now_ms=clock or Clock(START_MS, MINUTE // 2),
    )
    for record in sale_records(sale):
        await writer.append(record)
    return writer


@dataclass(frozen=True)
class ValueChain:
    upstream: StreamWriter  # the turbine's sale to the charger
    downstream: StreamWriter  # the charger's sale to the car


def turbine_sale(readings: Sequence[int] = (5,) * 20) -> Sale:
    """The turbine's sale to the charger (change a field with `dataclasses.replace`)."""
    return Sale(TURBINE, CHARGER, b"\x01" * 32, b"\x11" * 32, PRICE_UP, readings)


def charger_sale(readings: Sequence[int] = (5,) * 20) -> Sale:
    return Sale(CHARGER, CAR, b"\x02" * 32, b"\x12" * 32, PRICE_DOWN, readings)


async def write_chain(
    store: StreamStore,
    upstream: Sale | None = None,
    downstream: Sale | None = None,
    *,
    access: AccessMode = AccessMode.PUBLIC,
) -> ValueChain:
    turbine = await write_sale(store, upstream or turbine_sale(), access=access)
    charger = await write_sale(
        store, downstream or charger_sale(), links=[turbine.stream_id], access=access
    )
    return ValueChain(turbine, charger)
