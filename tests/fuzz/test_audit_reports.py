"""Signed audit reports against hostile files: `read_signed_report` and
`signed_report_in_html` return a report or raise `ProvenanceError("bad_report")`
whatever bytes they are given; a signed report with any byte changed is refused or fails
its signature check, never read as its issuer's with other figures; a huge or deeply
nested file is refused in bounded memory."""

from __future__ import annotations

import asyncio
from functools import cache, partial
from typing import Final

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.errors import ProvenanceError
from m2mpay.provenance import MemoryStreamStore
from m2mpay.provenance.audit import AuditRange
from m2mpay.provenance.audit_html import render_html, signed_report_in_html
from m2mpay.provenance.audit_report import (
    MAX_REPORT_BYTES,
    SignedReport,
    canonical_report,
    read_signed_report,
)
from m2mpay.provenance.audit_sources import StreamLibrary, audit_chain
from tests.fuzz.hostile import FUZZ, TEN_MB, json_nesting_bombs, peak_memory
from tests.provenance.audit_kit import CHARGER, MINUTE, START_MS, write_chain

pytestmark = pytest.mark.timeout(60)

CODES: Final = {"bad_report"}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)


@cache
def _signed() -> SignedReport:
    """A report of a two-hop chain (turbine → charger → car), signed by the charger."""

    async def build() -> SignedReport:
        async with MemoryStreamStore() as store:
            chain = await write_chain(store)
            return await audit_chain(
                StreamLibrary(store=store),
                chain.downstream.stream_id,
                CHARGER,
                span=AuditRange(from_ms=START_MS, interval_ms=15 * MINUTE),
                now_ms=lambda: START_MS + 60 * MINUTE,
            )

    return asyncio.run(build())


def _read_or_refuse(data: bytes) -> SignedReport | None:
    try:
        return read_signed_report(data)
    except ProvenanceError as exc:
        assert exc.code in CODES, exc  # noqa: PT017 (any value: either outcome)
        return None


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes_are_a_report_or_bad_report(data: bytes) -> None:
    _read_or_refuse(data)
    try:
        signed_report_in_html(data)
    except ProvenanceError as exc:
        assert exc.code in CODES, exc  # noqa: PT017 (any value: either outcome)


@FUZZ
@given(JSON, JSON)
def test_any_json_in_the_signed_shape_is_a_report_or_bad_report(
    report: object, sig: object
) -> None:
    _read_or_refuse(orjson.dumps({"report": report, "signature": sig}))
    _read_or_refuse(orjson.dumps(report))


@FUZZ
@given(st.data())
def test_a_changed_byte_is_refused_or_fails_the_signature_never_read_as_the_issuers(
    data: st.DataObject,
) -> None:
    signed = _signed()
    original = bytearray(signed.to_json())
    at = data.draw(st.integers(0, len(original) - 1), label="at")
    original[at] ^= data.draw(st.integers(1, 255), label="xor")
    read = _read_or_refuse(bytes(original))
    if read is None:
        return
    if canonical_report(read.report) == canonical_report(signed.report):
        # The same report (e.g. a change in the signature's hex case): the signature
        # recovers its issuer only if it is the very signature.
        if read.signature != signed.signature:
            with pytest.raises(ProvenanceError, match="bad_report_signature"):
                read.check(CHARGER.address)
        return
    with pytest.raises(ProvenanceError, match="bad_report_signature"):
        read.check(CHARGER.address)


def test_the_page_carries_the_report_and_a_changed_page_report_fails() -> None:
    signed = _signed()
    page = render_html(signed).encode()
    signed_report_in_html(page).check(CHARGER.address)
    paid = signed.report.hops[0].paid
    changed = page.replace(f'"paid":"{paid}"'.encode(), f'"paid":"{paid + 1}"'.encode(), 1)
    assert changed != page
    with pytest.raises(ProvenanceError, match="bad_report_signature"):
        signed_report_in_html(changed).check(CHARGER.address)


def test_huge_and_deeply_nested_files_are_refused_in_bounded_memory() -> None:
    huge = b'{"report":"' + b"x" * (MAX_REPORT_BYTES + 1) + b'","signature":"0x"}'
    assert peak_memory(lambda: read_signed_report(huge)) < TEN_MB  # refused before parsing
    assert _read_or_refuse(huge) is None
    for bomb in json_nesting_bombs():
        assert peak_memory(partial(read_signed_report, bomb)) < TEN_MB
        assert _read_or_refuse(bomb) is None
