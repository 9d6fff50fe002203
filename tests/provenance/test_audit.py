"""The audit report of a value chain built from its streams: turbine → charger → car
written by `StreamWriter`, energy against money per hop and interval, the charger's
commission, and each discrepancy flagged with its reason."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from m2mpay.crypto import PrivateKey
from m2mpay.provenance import AccessMode, MemoryStreamStore, StreamStore
from m2mpay.provenance.audit import AuditRange
from m2mpay.provenance.audit_report import AuditReport, DiscrepancyCode
from m2mpay.provenance.audit_sources import StreamLibrary, audit_chain
from m2mpay.provenance.stream_file import StreamFile
from m2mpay.provenance.stream_verify import ReadKey
from m2mpay.provenance.streams import ProvenanceStream
from tests.provenance.audit_kit import (
    CAR,
    CHARGER,
    MINUTE,
    PRICE_DOWN,
    PRICE_UP,
    START_MS,
    TURBINE,
    ValueChain,
    charger_sale,
    turbine_sale,
    write_chain,
)

ISSUER = CHARGER  # the charger's node reports on the chain it sells along
NOW = 1_800_000_000_000
WINDOW = AuditRange(from_ms=START_MS, interval_ms=15 * MINUTE)


@pytest.fixture
async def store() -> AsyncIterator[StreamStore]:
    async with MemoryStreamStore() as opened:
        yield opened


async def _report(
    store: StreamStore,
    chain: ValueChain,
    span: AuditRange = WINDOW,
    *,
    files: Sequence[StreamFile] = (),
    keys: Mapping[bytes, ReadKey] | None = None,
    author: PrivateKey | None = None,
) -> AuditReport:
    signed = await audit_chain(
        StreamLibrary(store=store, files=files, keys=keys, author=author),
        chain.downstream.stream_id,
        ISSUER,
        span=span,
        now_ms=lambda: NOW,
    )
    signed.check(ISSUER.address)
    return signed.report


def _codes(report: AuditReport) -> set[DiscrepancyCode]:
    return {d.code for d in report.discrepancies}


async def test_two_hops_energy_against_money_and_the_commission(store: StreamStore) -> None:
    chain = await write_chain(store)
    report = await _report(store, chain)

    assert report.chain == (chain.upstream.stream_id, chain.downstream.stream_id)
    up, down = report.hops
    assert (up.seller, up.buyer) == (TURBINE.address, CHARGER.address)
    assert (down.seller, down.buyer) == (CHARGER.address, CAR.address)
    assert down.upstream == (chain.upstream.stream_id,)
    assert (up.units, up.value, up.paid) == (100, 100 * PRICE_UP, 100 * PRICE_UP)
    assert (down.units, down.value, down.paid) == (100, 100 * PRICE_DOWN, 100 * PRICE_DOWN)
    assert up.receipt is not None
    assert up.receipt.countersigned
    assert up.verified
    assert down.verified
    # Readings every minute from 2 minutes in: 13 in the first quarter hour, 7 after.
    assert [(i.start_ms, i.units) for i in up.intervals] == [
        (START_MS, 65),
        (START_MS + 15 * MINUTE, 35),
    ]
    assert [i.paid for i in down.intervals] == [65 * 5 // 5 * PRICE_DOWN, 35 * PRICE_DOWN]
    (charger,) = report.resellers
    assert charger.address == CHARGER.address
    assert (charger.bought, charger.sold) == (100, 100)
    assert int(charger.commission) == 100 * (PRICE_DOWN - PRICE_UP)
    # Nothing anchored in this store: every message is flagged as such, nothing else.
    assert _codes(report) == {DiscrepancyCode.UNANCHORED}
    assert not report.clean
    assert [c.done for c in report.checks] == [True, False, False]


async def test_a_reseller_that_sells_more_than_it_bought_is_flagged(store: StreamStore) -> None:
    chain = await write_chain(store, downstream=charger_sale((6,) * 20))
    report = await _report(store, chain)
    assert DiscrepancyCode.OVERSOLD in _codes(report)
    (oversold,) = [d for d in report.discrepancies if d.code is DiscrepancyCode.OVERSOLD]
    assert "sold 120 units but bought 100" in oversold.detail


async def test_payments_behind_beyond_the_credit_window_are_flagged(store: StreamStore) -> None:
    half_paid = dataclasses.replace(turbine_sale(), pay_ratio=(1, 2))
    chain = await write_chain(store, upstream=half_paid)
    report = await _report(
        store, chain, AuditRange(from_ms=START_MS, interval_ms=15 * MINUTE, credit_window=5)
    )
    (underpaid,) = [d for d in report.discrepancies if d.code is DiscrepancyCode.UNDERPAID]
    assert underpaid.stream == chain.upstream.stream_id
    # A window of 5 Wh covers the first half-paid reading (2.5 Wh behind), not the third.
    assert "by message 7" in underpaid.detail


async def test_within_the_credit_window_nothing_is_underpaid(store: StreamStore) -> None:
    half_paid = dataclasses.replace(turbine_sale(), pay_ratio=(1, 2))
    chain = await write_chain(store, upstream=half_paid)
    report = await _report(
        store, chain, AuditRange(from_ms=START_MS, interval_ms=15 * MINUTE, credit_window=50)
    )
    assert DiscrepancyCode.UNDERPAID not in _codes(report)


async def test_a_receipt_that_is_not_the_streams_sums_is_flagged(store: StreamStore) -> None:
    inflated = dataclasses.replace(charger_sale(), receipt_units_extra=7)
    chain = await write_chain(store, downstream=inflated)
    report = await _report(store, chain)
    (mismatch,) = [d for d in report.discrepancies if d.code is DiscrepancyCode.RECEIPT_MISMATCH]
    assert "units 107" in mismatch.detail
    assert "add up to 100" in mismatch.detail


async def test_a_receipt_only_the_seller_signed_is_flagged(store: StreamStore) -> None:
    chain = await write_chain(
        store, upstream=dataclasses.replace(turbine_sale(), countersigned=False)
    )
    report = await _report(store, chain)
    assert report.hops[0].receipt is not None
    assert not report.hops[0].receipt.countersigned
    assert DiscrepancyCode.RECEIPT_MISMATCH in _codes(report)


async def test_a_stream_that_does_not_verify_counts_only_up_to_its_problem(
    store: StreamStore,
) -> None:
    chain = await write_chain(store)
    stream = await ProvenanceStream.load(store, chain.upstream.stream_id)
    raws = [m.raw for m in stream.messages]
    flipped = bytearray(raws[10])
    flipped[-70] ^= 1  # a byte of the payload: the signature no longer holds
    raws[10] = bytes(flipped)
    # A copy of the turbine's stream handed in as a file: it is found before the store's.
    file = StreamFile(stream.stream_id, len(raws), stream.root.raw, tuple(raws))
    report = await _report(store, chain, files=[file])
    invalid = [d for d in report.discrepancies if d.code is DiscrepancyCode.STREAM_INVALID]
    assert len(invalid) == 1
    assert invalid[0].stream == chain.upstream.stream_id
    assert "bad_signature" in invalid[0].detail
    up = report.hops[0]
    assert not up.verified
    assert up.messages == 10
    assert up.units == 20  # the readings before message 10: four of 5 Wh


async def test_a_missing_upstream_stream_is_a_broken_link(store: StreamStore) -> None:
    chain = await write_chain(store)
    async with MemoryStreamStore() as only_downstream:
        down = await ProvenanceStream.load(store, chain.downstream.stream_id)
        await only_downstream.add_root(down.root)
        await only_downstream.append(list(down.messages))
        report = await _report(only_downstream, chain)
    (broken,) = [d for d in report.discrepancies if d.code is DiscrepancyCode.BROKEN_LINK]
    assert broken.stream == chain.upstream.stream_id
    assert len(report.hops) == 1
    assert report.resellers[0].bought == 0
    assert DiscrepancyCode.OVERSOLD in _codes(report)  # sold 100 Wh it cannot show it bought


async def test_a_link_to_someone_elses_purchase_is_a_broken_link(store: StreamStore) -> None:
    stranger = PrivateKey(bytes(31) + b"\x29")
    elsewhere = dataclasses.replace(turbine_sale(), buyer=stranger)
    chain = await write_chain(store, upstream=elsewhere)
    report = await _report(store, chain)
    (broken,) = [d for d in report.discrepancies if d.code is DiscrepancyCode.BROKEN_LINK]
    assert broken.stream == chain.downstream.stream_id
    assert str(stranger.address) in broken.detail


async def test_a_restricted_stream_of_another_author_needs_its_key(store: StreamStore) -> None:
    chain = await write_chain(store, access=AccessMode.RESTRICTED)
    without = await _report(store, chain, author=ISSUER)
    # The charger derives its own stream's keys; the turbine's needs the turbine's key.
    unread = [d for d in without.discrepancies if d.code is DiscrepancyCode.STREAM_INVALID]
    assert {d.stream for d in unread} == {chain.upstream.stream_id}
    assert "missing_key" in unread[0].detail
    assert [h.stream for h in without.hops] == [chain.downstream.stream_id]
    with_key = await _report(
        store, chain, keys={chain.upstream.stream_id: chain.upstream.key()}, author=ISSUER
    )
    assert DiscrepancyCode.STREAM_INVALID not in _codes(with_key)
    assert with_key.hops[0].units == 100


async def test_a_range_counts_only_what_falls_in_it(store: StreamStore) -> None:
    chain = await write_chain(store)
    full = await _report(store, chain)
    first = full.hops[0].intervals[0]
    report = await _report(
        store,
        chain,
        AuditRange(
            from_ms=first.start_ms, to_ms=first.start_ms + 15 * MINUTE, interval_ms=5 * MINUTE
        ),
    )
    assert report.hops[0].units == first.units
    assert len(report.hops[0].intervals) <= 3


async def test_a_range_after_every_record_is_empty_not_an_error(store: StreamStore) -> None:
    chain = await write_chain(store)
    later = START_MS + 24 * 60 * MINUTE
    report = await _report(store, chain, AuditRange(from_ms=later))
    assert (report.from_ms, report.to_ms) == (later, later)
    assert [(h.units, h.paid, h.intervals) for h in report.hops] == [(0, 0, ())] * 2
    assert DiscrepancyCode.OVERSOLD not in _codes(report)


async def test_a_range_left_open_covers_every_record_from_a_quarter_hour_on(
    store: StreamStore,
) -> None:
    chain = await write_chain(store)
    report = await _report(store, chain, AuditRange())
    # The first record at 14:00:30, the receipt (the last) at 14:22:00.
    assert report.from_ms == START_MS
    assert report.to_ms == START_MS + 22 * MINUTE + 1
    assert [i.start_ms for i in report.hops[0].intervals] == [START_MS, START_MS + 15 * MINUTE]
    (unanchored, _) = [d for d in report.discrepancies if d.code is DiscrepancyCode.UNANCHORED]
    assert "messages 0 to 42" in unanchored.detail
    assert "the chain was not asked" in unanchored.detail
