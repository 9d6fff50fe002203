"""Building the audit report of a value chain from its verified streams (pure).

`build_report` takes the streams of a chain as `AuditedStream`s (a stream as `verify`
left it, with what its anchors showed, made by `audit_sources.gather`) and the stream
to start from (the last sale, e.g. the charger's to the car), and walks upstream along
each root's `links`. Only verified messages count: a stream that stops verifying counts
up to its problem and is flagged. For each stream it reads:

- its `SessionRecord`: the hop (seller's payment address, buyer, session, channel);
- its `PriceRecord`s: the price of every reading after it;
- its `MeterRecord`s: units delivered, in the interval of the message's timestamp;
- its `PaymentRecord`s: tokens received, likewise;
- its `ReceiptRecord`: the totals both parties signed.

What it flags (`DiscrepancyCode`): a stream that does not verify; a link to a stream
that is missing or whose buyer is not the reseller; a reseller that sold more than it
bought; a hop whose payments fall behind metered × price by more than the credit window
(after any payment, and at the stream's end); a receipt whose totals are not the
stream's own sums (over the whole session, whatever the range), or that lacks a party's
signature; messages in the range that no confirmed anchor covers; an anchor proof that
fails; a session whose channel the chain does not know at its hub.

Amounts are integers in the token's smallest unit, units as metered (Wh for energy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from m2mpay.crypto import Address
from m2mpay.errors import CryptoError, ProvenanceError
from m2mpay.provenance.audit_report import (
    REPORT_VERSION,
    AuditReport,
    Check,
    Discrepancy,
    DiscrepancyCode,
    Hop,
    IntervalFlow,
    ReceiptTotals,
    Reseller,
)
from m2mpay.provenance.stream_records import (
    MeterRecord,
    MeterUnit,
    PaymentRecord,
    PriceRecord,
    ReceiptRecord,
    SessionRecord,
)
from m2mpay.provenance.stream_verify import Verified

__all__ = [
    "DEFAULT_INTERVAL_MS",
    "MAX_CHAIN_STREAMS",
    "MAX_INTERVALS",
    "AnchorStatus",
    "AuditRange",
    "AuditedStream",
    "build_report",
]

DEFAULT_INTERVAL_MS: Final = 15 * 60 * 1000  # the settlement period of European power markets
MAX_INTERVALS: Final = 10_000  # per hop: what a report carries (the plain codec's list bound)
MAX_CHAIN_STREAMS: Final = 64  # streams one report follows upstream
_DETAIL: Final = 1000  # the longest detail a report carries


@dataclass(frozen=True, slots=True)
class AnchorStatus:
    """What the stream's anchor proofs showed: the last index a confirmed anchor covers
    (None: none), the blocks of those anchors, the proofs that failed and why, and
    whether the chain itself was asked (else only the proofs' own paths were)."""

    covered_through: int | None = None
    blocks: tuple[int, ...] = ()
    failures: tuple[str, ...] = ()
    on_chain: bool = False


@dataclass(frozen=True, slots=True)
class AuditedStream:
    """A stream as checked: verified, its anchors, and why its session's channel is not
    on chain (None: it is, or the chain was not asked)."""

    verified: Verified
    anchors: AnchorStatus = field(default_factory=AnchorStatus)
    channel_problem: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRange:
    """The report's range, [from_ms, to_ms), in intervals of `interval_ms` from from_ms;
    None for either end: the streams' own extent."""

    from_ms: int | None = None
    to_ms: int | None = None
    interval_ms: int = DEFAULT_INTERVAL_MS
    credit_window: int = 0  # units a seller may deliver ahead of payment


def _cut(text: str) -> str:
    return text if len(text) <= _DETAIL else text[: _DETAIL - 1] + "…"


@dataclass
class _Walked:
    """A stream's records read in order."""

    stream: bytes
    audited: AuditedStream
    session: SessionRecord | None = None
    token: Address | None = None
    receipt: ReceiptRecord | None = None
    # (timestamp, index, units, price) of each reading; (timestamp, index, amount) a payment
    meters: list[tuple[int, int, int, int]] = field(default_factory=list)
    payments: list[tuple[int, int, int]] = field(default_factory=list)
    extra_units: list[MeterUnit] = field(default_factory=list)


def _walk(stream: bytes, audited: AuditedStream) -> _Walked:
    walked = _Walked(stream, audited)
    price = 0
    for verified in audited.verified.messages:
        record = verified.content
        at, index = verified.message.timestamp_ms, verified.message.index
        if isinstance(record, SessionRecord) and walked.session is None:
            walked.session = record
        elif isinstance(record, PriceRecord):
            price, walked.token = record.price, record.token
        elif isinstance(record, MeterRecord):
            walked.meters.append((at, index, record.delta, price))
            if walked.session is not None and record.unit is not walked.session.unit:
                walked.extra_units.append(record.unit)
        elif isinstance(record, PaymentRecord):
            walked.payments.append((at, index, record.amount))
        elif isinstance(record, ReceiptRecord):
            walked.receipt = record
    return walked


class _Builder:
    def __init__(
        self,
        streams: Mapping[bytes, AuditedStream],
        missing: Mapping[bytes, str],
        span: AuditRange,
    ) -> None:
        self.streams = streams
        self.missing = missing
        self.span = span
        self.discrepancies: list[Discrepancy] = []

    def flag(self, code: DiscrepancyCode, stream: bytes | None, detail: str) -> None:
        self.discrepancies.append(Discrepancy(code, stream, _cut(detail)))

    def order(self, start: bytes) -> list[bytes]:
        """The chain's streams upstream first: each after every stream it links."""
        ordered: list[bytes] = []
        seen: set[bytes] = set()

        def visit(stream: bytes, depth: int) -> None:
            if stream in seen:
                return
            if len(seen) >= MAX_CHAIN_STREAMS:
                self.flag(
                    DiscrepancyCode.BROKEN_LINK,
                    stream,
                    f"the chain goes on past {MAX_CHAIN_STREAMS} streams: left out of this report",
                )
                return
            seen.add(stream)
            audited = self.streams.get(stream)
            root = audited.verified.root if audited is not None else None
            if audited is None or root is None:
                why = self.missing.get(stream, "it was not found")
                self.flag(
                    DiscrepancyCode.BROKEN_LINK if depth else DiscrepancyCode.STREAM_INVALID,
                    stream,
                    f"the stream 0x{stream.hex()} cannot be read: {why}",
                )
                return
            for link in root.links:
                visit(link, depth + 1)
            ordered.append(stream)

        visit(start, 0)
        return ordered

    def extent(self, walked: Sequence[_Walked]) -> tuple[int, int]:
        # Left open, the range is every verified record's, from the start of its first
        # interval on the clock (14:00, 14:15, … for quarter hours), as people count them.
        times = [m.message.timestamp_ms for w in walked for m in w.audited.verified.messages]
        interval = max(self.span.interval_ms, 1)
        first = min(times, default=0) // interval * interval
        start = self.span.from_ms if self.span.from_ms is not None else first
        # Left open, the range ends after the last record (and never before it starts).
        last = max(max(times, default=start) + 1, start)
        end = self.span.to_ms if self.span.to_ms is not None else last
        if end < start or self.span.interval_ms <= 0:
            raise ProvenanceError("bad_range", "the range runs forward, in intervals of > 0 ms")
        if -(-(end - start) // self.span.interval_ms) > MAX_INTERVALS:
            raise ProvenanceError(
                "bad_range", f"at most {MAX_INTERVALS} intervals a hop: widen the interval"
            )
        return start, end

    def hop(self, walked: _Walked, start: int, end: int) -> Hop | None:
        audited, stream = walked.audited, walked.stream
        verified = audited.verified
        if not verified.ok:
            assert verified.problem is not None
            self.flag(
                DiscrepancyCode.STREAM_INVALID,
                stream,
                f"the stream does not verify ({verified.problem}); only its first"
                f" {len(verified.messages)} messages count",
            )
        session = walked.session
        if session is None:
            self.flag(
                DiscrepancyCode.STREAM_INVALID, stream, "no verified session record: not a sale"
            )
            return None
        if walked.extra_units:
            self.flag(
                DiscrepancyCode.STREAM_INVALID,
                stream,
                f"readings in {walked.extra_units[0].value},"
                f" the session meters {session.unit.value}",
            )
        buckets: dict[int, list[int]] = {}

        def bucket(at: int) -> list[int]:
            key = start + (at - start) // self.span.interval_ms * self.span.interval_ms
            return buckets.setdefault(key, [0, 0, 0])

        units = value = paid = 0
        for at, _, delta, price in walked.meters:
            if start <= at < end:
                units, value = units + delta, value + delta * price
                row = bucket(at)
                row[0] += delta
                row[1] += delta * price
        for at, _, amount in walked.payments:
            if start <= at < end:
                paid += amount
                bucket(at)[2] += amount
        self.check_payments(walked)
        receipt = self.check_receipt(walked, session)
        self.check_anchors(walked, start, end)
        if audited.channel_problem is not None:
            self.flag(DiscrepancyCode.CHANNEL_UNKNOWN, stream, audited.channel_problem)
        anchors = audited.anchors
        return Hop(
            stream=stream,
            seller=session.pay_to,
            buyer=session.buyer,
            session=session.session,
            channel=session.channel,
            chain_id=session.chain_id,
            unit=session.unit,
            token=walked.token,
            upstream=verified.root.links if verified.root is not None else (),
            verified=verified.ok,
            messages=len(verified.messages),
            units=units,
            value=value,
            paid=paid,
            receipt=receipt,
            anchored_through=anchors.covered_through,
            anchor_blocks=anchors.blocks,
            intervals=tuple(
                IntervalFlow(at, row[0], row[1], row[2]) for at, row in sorted(buckets.items())
            ),
        )

    def check_payments(self, walked: _Walked) -> None:
        """Paid must keep up with metered × price up to the credit window: checked after
        each payment (what a seller waits for) and at the stream's end."""
        window_units = self.span.credit_window
        events = sorted(
            [(index, delta * price, 0, price) for _, index, delta, price in walked.meters]
            + [(index, 0, amount, -1) for _, index, amount in walked.payments]
        )
        owed = paid = price = 0  # the window is worth it at the latest price
        for number, (index, cost, amount, priced) in enumerate(events):
            owed += cost
            paid += amount
            price = priced if priced >= 0 else price
            last = number == len(events) - 1
            if (amount or last) and owed - paid > window_units * price:
                self.flag(
                    DiscrepancyCode.UNDERPAID,
                    walked.stream,
                    f"by message {index}, {owed} tokens were owed for what was metered and"
                    f" {paid} paid: {owed - paid} behind, more than the credit window of"
                    f" {window_units} units ({window_units * price} tokens)",
                )
                return

    def check_receipt(self, walked: _Walked, session: SessionRecord) -> ReceiptTotals | None:
        receipt = walked.receipt
        if receipt is None:
            return None
        sums = (
            sum(m[2] for m in walked.meters),
            sum(m[2] * m[3] for m in walked.meters),
            sum(p[2] for p in walked.payments),
        )
        signed = (receipt.forward.units, receipt.forward.value, receipt.forward.paid)
        names = ("units", "value", "paid")
        for name, stream_sum, on_receipt in zip(names, sums, signed, strict=True):
            if stream_sum != on_receipt:
                self.flag(
                    DiscrepancyCode.RECEIPT_MISMATCH,
                    walked.stream,
                    f"the receipt says {name} {on_receipt}, the stream's records add up to"
                    f" {stream_sum}",
                )
        try:
            signers = set(receipt.signers())
        except CryptoError:  # a signature that does not recover signs nothing
            signers = set()
        countersigned = {session.pay_to, session.buyer} <= signers
        if not countersigned:
            self.flag(
                DiscrepancyCode.RECEIPT_MISMATCH,
                walked.stream,
                "the receipt is not signed by both the seller and the buyer",
            )
        return ReceiptTotals(*signed, countersigned=countersigned)

    def check_anchors(self, walked: _Walked, start: int, end: int) -> None:
        anchors = walked.audited.anchors
        for failure in anchors.failures:
            self.flag(DiscrepancyCode.ANCHOR_INVALID, walked.stream, failure)
        covered = -1 if anchors.covered_through is None else anchors.covered_through
        late = [
            m.message.index
            for m in walked.audited.verified.messages
            if m.message.index > covered and start <= m.message.timestamp_ms < end
        ]
        if late:
            covered_by = (
                "an anchor the chain confirms"
                if anchors.on_chain
                else "an anchor proof (and the chain was not asked)"
            )
            self.flag(
                DiscrepancyCode.UNANCHORED,
                walked.stream,
                f"messages {late[0]} to {late[-1]} are not covered by {covered_by}:"
                " nothing outside the stream dates them",
            )

    def resellers(self, hops: Sequence[Hop]) -> list[Reseller]:
        by_stream = {h.stream: h for h in hops}
        found: dict[Address, list[int]] = {}
        for hop in hops:
            upstream = [by_stream[u] for u in hop.upstream if u in by_stream]
            if not hop.upstream:
                continue
            row = found.setdefault(hop.seller, [0, 0, 0, 0])
            row[1] += hop.units
            row[3] += hop.paid
            for up in upstream:
                if up.buyer != hop.seller:
                    self.flag(
                        DiscrepancyCode.BROKEN_LINK,
                        hop.stream,
                        f"it links a sale to {up.buyer}, not to its seller {hop.seller}:"
                        " the energy it resells was not bought by it",
                    )
                    continue
                row[0] += up.units
                row[2] += up.paid
        resellers = []
        for address, (bought, sold, paid_up, received) in found.items():
            if sold > bought:
                self.flag(
                    DiscrepancyCode.OVERSOLD,
                    None,
                    f"{address} sold {sold} units but bought {bought} upstream in the range",
                )
            resellers.append(
                Reseller(address, bought, sold, paid_up, received, str(received - paid_up))
            )
        return resellers


def build_report(
    streams: Mapping[bytes, AuditedStream],
    start: bytes,
    *,
    issuer: Address,
    issued_ms: int,
    span: AuditRange | None = None,
    missing: Mapping[bytes, str] | None = None,
    checks: Sequence[Check] = (),
) -> AuditReport:
    """The report of the chain ending in stream `start` (see the module docstring);
    `missing` says why a stream of the chain could not be had."""
    span = span or AuditRange()
    builder = _Builder(streams, missing or {}, span)
    ordered = builder.order(start)
    walked = [_walk(s, streams[s]) for s in ordered]
    from_ms, to_ms = builder.extent(walked)
    hops = [hop for w in walked if (hop := builder.hop(w, from_ms, to_ms)) is not None]
    resellers = builder.resellers(hops)
    return AuditReport(
        version=REPORT_VERSION,
        issuer=issuer,
        issued_ms=issued_ms,
        from_ms=from_ms,
        to_ms=to_ms,
        interval_ms=span.interval_ms,
        credit_window=span.credit_window,
        chain=tuple(ordered),
        hops=tuple(hops),
        resellers=tuple(resellers),
        discrepancies=tuple(builder.discrepancies),
        checks=tuple(checks),
    )
