"""A provenance stream's QR code against hostile text: whatever a camera reads (any
text, or a real code's URL with characters changed, cut or repeated), the parser returns
a stream code or raises `QrFormatError`, nothing else; with the optional `rpc` field as
without it."""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.provenance.qr import QrFormatError, StreamCode, parse_stream_code
from tests.fuzz.hostile import FUZZ

pytestmark = pytest.mark.timeout(60)

URL: Final = StreamCode(
    bytes(range(32)), "http://127.0.0.1:8000/provenance/streams/0x00.jsonl", bytes(32)
).url("http://127.0.0.1:8000/provenance/reader/")
WITH_RPC: Final = StreamCode(
    bytes(range(32)),
    "http://127.0.0.1:8000/provenance/streams/0x00.jsonl",
    bytes(32),
    rpc="http://127.0.0.1:8545/",
).url("http://127.0.0.1:8000/provenance/reader/")


def _parses_or_refuses(text: str) -> None:
    try:
        code = parse_stream_code(text)
    except QrFormatError as error:
        assert error.code == "qr_format"  # noqa: PT017 (any text: either outcome)
    else:
        assert parse_stream_code("#" + code.fragment()) == code


@given(text=st.text(max_size=600))
@FUZZ
def test_any_text_parses_or_is_refused(text: str) -> None:
    _parses_or_refuses(text)
    _parses_or_refuses("#" + text)
    _parses_or_refuses(URL + text)
    _parses_or_refuses(URL + "&rpc=" + text)


@given(data=st.data())
@FUZZ
def test_a_real_code_with_characters_changed_parses_or_is_refused(data: st.DataObject) -> None:
    url = data.draw(st.sampled_from([URL, WITH_RPC]))
    at = data.draw(st.integers(0, len(url) - 1))
    end = data.draw(st.integers(at, len(url)))
    middle = data.draw(st.text(max_size=40))
    _parses_or_refuses(url[:at] + middle + url[end:])
    _parses_or_refuses(url[:at])
