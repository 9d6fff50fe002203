"""What a discovery query or a listing on chain hands the market's decoders, hostile: a
geohash (from a query, or a listing's location that any key may have written) decodes
to a point on the globe or is refused with `MarketError("bad_geohash")`; a kind parses
or is refused with `bad_kind`; a query is built or refused, nothing else."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.errors import MarketError
from m2mpay.market.discovery import ServiceQuery, kind_name, kind_number
from m2mpay.market.geohash import decode, distance_m, is_geohash
from tests.fuzz.hostile import FUZZ

pytestmark = pytest.mark.timeout(60)

GEOHASHES = st.text(alphabet="0123456789bcdefghjkmnpqrstuvwxyz", min_size=1, max_size=12)


@given(text=st.one_of(st.text(max_size=40), GEOHASHES))
@FUZZ
def test_any_text_is_a_place_or_refused(text: str) -> None:
    try:
        latitude, longitude = decode(text)
    except MarketError as refused:
        assert refused.code == "bad_geohash"  # noqa: PT017 (any text: either outcome)
        assert not is_geohash(text)
    else:
        assert is_geohash(text)
        assert -90 <= latitude <= 90
        assert -180 <= longitude <= 180


@given(a=GEOHASHES, b=GEOHASHES)
@FUZZ
def test_any_two_places_are_at_most_half_the_globe_apart(a: str, b: str) -> None:
    distance = distance_m(a, b)
    assert 0 <= distance <= math.pi * 6_371_009
    assert distance == pytest.approx(distance_m(b, a))


@given(text=st.text(max_size=30))
@FUZZ
def test_any_kind_parses_or_is_refused(text: str) -> None:
    try:
        kind = kind_number(text)
    except MarketError as refused:
        assert refused.code == "bad_kind"  # noqa: PT017
    else:
        assert 0 <= kind <= 15
        assert kind_number(kind_name(kind)) == kind


@given(
    near=st.one_of(st.none(), st.text(max_size=20)),
    sort=st.sampled_from(["price", "score", "distance", None]),
)
@FUZZ
def test_any_query_is_built_or_refused(near: str | None, sort: str | None) -> None:
    try:
        ServiceQuery(near=near, sort=sort)  # type: ignore[arg-type]
    except MarketError as refused:
        assert refused.code in {"bad_geohash", "bad_query"}  # noqa: PT017
