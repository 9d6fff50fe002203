"""The audit report of a value chain: what it says, its canonical JSON, its signature.

A report sets the energy that flowed along a value chain against the money that flowed
back, hop by hop and interval by interval, as the provenance streams of its sessions
recorded them (`audit.build_report` makes it). A **hop** is one sale: a seller's payment
address delivering to a buyer under one metered session over one channel; a reseller
buys on one hop and sells on the next, and its commission is what it received
downstream minus what it paid upstream.

The report is signed by the node that issues it, so an authority can tell who stands
behind it and that nothing in it was changed since:

- its **canonical JSON** is the `m2mpay.plain` text form (bytes as 0x-hex, addresses
  EIP-55, token amounts as decimal strings, counts and milliseconds as numbers) with keys
  sorted and no spaces, so one report has one byte string;
- the signature is EIP-191's ``personal_sign`` of those bytes (``"\\x19Ethereum Signed
  Message:\\n" + length + bytes``), which any Ethereum wallet or library checks as well
  as `verify_report`; the bytes start with the report's type tag (`audit.report`), so a
  report's signature is never that of another message of ours;
- the signed file is ``{"report": <canonical report>, "signature": "0x…"}``.

`read_signed_report` decodes a file with bounds on its size and every field, then
`SignedReport.check` recovers the signer, which must be the report's `issuer`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

from m2mpay.crypto import Address, PrivateKey, Signature, keccak256, recover_signer
from m2mpay.errors import CryptoError, MalformedMessage, ProvenanceError
from m2mpay.plain import Bytes32, Text, Uint53, Uint256, from_plain, plain_type, to_plain
from m2mpay.provenance.stream_records import MeterUnit

__all__ = [
    "MAX_REPORT_BYTES",
    "REPORT_VERSION",
    "AuditReport",
    "Check",
    "Discrepancy",
    "DiscrepancyCode",
    "Hop",
    "IntervalFlow",
    "ReceiptTotals",
    "Reseller",
    "SignedReport",
    "canonical_report",
    "read_signed_report",
    "report_digest",
    "sign_report",
]

REPORT_VERSION: Final = 1
MAX_REPORT_BYTES: Final = 16 * 1024 * 1024  # a year of 15-minute intervals over dozens of hops
_EIP191_PREFIX: Final = b"\x19Ethereum Signed Message:\n"
_SIGNED: Final = re.compile(r"-?(0|[1-9][0-9]{0,77})")


class DiscrepancyCode(enum.StrEnum):
    """What a report flags; each with a plain-language reason beside it."""

    STREAM_INVALID = "stream_invalid"  # a stream that does not verify (only its prefix counts)
    BROKEN_LINK = "broken_link"  # an upstream stream that is missing or is not the reseller's
    OVERSOLD = "oversold"  # a reseller sold more energy than it bought upstream
    UNDERPAID = "underpaid"  # paid less than metered × price, beyond the credit window
    RECEIPT_MISMATCH = "receipt_mismatch"  # the receipt's totals are not the stream's sums
    UNANCHORED = "unanchored"  # messages no anchor confirmed on chain covers
    ANCHOR_INVALID = "anchor_invalid"  # an anchor proof the chain (or its own path) refutes
    CHANNEL_UNKNOWN = "channel_unknown"  # the session's channel is not at its hub on chain


@dataclass(frozen=True, slots=True)
class IntervalFlow:
    """One interval of a hop: `units` delivered (metered), `value` what they cost at the
    price then, `paid` the tokens received in it."""

    start_ms: Uint53
    units: Uint53
    value: Uint256
    paid: Uint256


@dataclass(frozen=True, slots=True)
class ReceiptTotals:
    """The session's final receipt as the parties signed it (seller to buyer)."""

    units: Uint256
    value: Uint256
    paid: Uint256
    countersigned: bool


@dataclass(frozen=True, slots=True)
class Hop:
    """One sale along the chain, its sums within the report's range."""

    stream: Bytes32
    seller: Address
    buyer: Address
    session: Bytes32
    channel: Bytes32
    chain_id: Uint53
    unit: MeterUnit
    token: Address | None
    upstream: tuple[Bytes32, ...]
    verified: bool
    messages: Uint53  # messages that verified
    units: Uint53
    value: Uint256
    paid: Uint256
    receipt: ReceiptTotals | None
    anchored_through: Uint53 | None  # the last message index an anchor covers
    anchor_blocks: tuple[Uint53, ...]
    intervals: tuple[IntervalFlow, ...]


@dataclass(frozen=True, slots=True)
class Reseller:
    """A node that bought on one hop and sold on the next: energy in and out, tokens out
    and in, and its commission (received minus paid, negative for a loss)."""

    address: Address
    bought: Uint53
    sold: Uint53
    paid_upstream: Uint256
    received_downstream: Uint256
    commission: str  # a signed decimal: JSON numbers cannot carry token amounts exactly

    def __post_init__(self) -> None:
        if not _SIGNED.fullmatch(self.commission):
            raise ValueError("a commission is a signed decimal integer")


@dataclass(frozen=True, slots=True)
class Discrepancy:
    code: DiscrepancyCode
    stream: Bytes32 | None
    detail: Text


@dataclass(frozen=True, slots=True)
class Check:
    """What the report checked (or could not), said plainly."""

    what: Text
    done: bool
    detail: Text


@plain_type("audit.report")
@dataclass(frozen=True, slots=True)
class AuditReport:
    """See the module docstring. `hops` run upstream first (the turbine's sale before
    the charger's); `chain` is the stream ids in that order."""

    version: Uint53
    issuer: Address
    issued_ms: Uint53
    from_ms: Uint53
    to_ms: Uint53
    interval_ms: Uint53
    credit_window: Uint53  # units a seller may deliver ahead of payment
    chain: tuple[Bytes32, ...]
    hops: tuple[Hop, ...]
    resellers: tuple[Reseller, ...]
    discrepancies: tuple[Discrepancy, ...]
    checks: tuple[Check, ...]

    def __post_init__(self) -> None:
        if self.version != REPORT_VERSION:
            raise ValueError(f"audit report version {self.version}; this reads {REPORT_VERSION}")
        if not self.interval_ms > 0 or self.to_ms < self.from_ms:
            raise ValueError("the range runs forward in intervals of at least 1 ms")

    @property
    def clean(self) -> bool:
        """No discrepancy and every stream verified."""
        return not self.discrepancies and all(h.verified for h in self.hops)


def canonical_report(report: AuditReport) -> bytes:
    """The report's one byte string: what is signed."""
    return orjson.dumps(to_plain(report, binary=False), option=orjson.OPT_SORT_KEYS)


def report_digest(canonical: bytes) -> bytes:
    """EIP-191 version 0x45 (personal_sign) of the canonical bytes."""
    return keccak256(_EIP191_PREFIX + str(len(canonical)).encode() + canonical)


@dataclass(frozen=True, slots=True)
class SignedReport:
    report: AuditReport
    signature: Signature

    def to_json(self) -> bytes:
        """The signed file: the canonical report and its signature."""
        return (
            b'{"report":'
            + canonical_report(self.report)
            + b',"signature":"0x'
            + self.signature.hex().encode()
            + b'"}\n'
        )

    def signer(self) -> Address | None:
        try:
            return recover_signer(report_digest(canonical_report(self.report)), self.signature)
        except CryptoError:
            return None

    def check(self, issuer: Address | None = None) -> None:
        """`ProvenanceError("bad_report_signature")` unless the report's issuer signed it
        (and it is `issuer`, if given)."""
        signer = self.signer()
        if signer is None or signer != self.report.issuer:
            raise ProvenanceError(
                "bad_report_signature",
                f"the report is not signed by its issuer {self.report.issuer}"
                " (changed after it was signed, or signed by another key)",
            )
        if issuer is not None and signer != issuer:
            raise ProvenanceError(
                "bad_report_signature", f"the report is {signer}'s, not {issuer}'s"
            )


def sign_report(report: AuditReport, key: PrivateKey) -> SignedReport:
    if report.issuer != key.address:
        raise ProvenanceError("not_issuer", f"the report names {report.issuer} as its issuer")
    return SignedReport(report, key.sign_digest(report_digest(canonical_report(report))))


def _malformed(detail: str) -> ProvenanceError:
    return ProvenanceError("bad_report", detail)


def read_signed_report(data: bytes) -> SignedReport:
    """The signed report in a file's bytes, decoded with bounds, its signature not yet
    checked (`SignedReport.check`); `ProvenanceError("bad_report")` if it holds none."""
    if len(data) > MAX_REPORT_BYTES:
        raise _malformed(f"a report file is at most {MAX_REPORT_BYTES} bytes")
    try:
        value: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _malformed(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or set(value) != {"report", "signature"}:
        raise _malformed('a signed report is {"report": …, "signature": "0x…"}')
    signature = value["signature"]
    try:
        report = from_plain(value["report"])
        if not isinstance(signature, str) or signature[:2] != "0x":
            raise _malformed("the signature is 0x-hex")
        return SignedReport(_report(report), Signature(bytes.fromhex(signature[2:])))
    except (MalformedMessage, CryptoError, ValueError) as exc:
        raise _malformed(str(exc)) from None


def _report(value: object) -> AuditReport:
    if not isinstance(value, AuditReport):
        raise _malformed(f"a {type(value).__name__} is not an audit report")
    return value
