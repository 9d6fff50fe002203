"""Geohashes as listings give a place: the standard cells, and distances between them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.errors import MarketError
from m2mpay.market.geohash import decode, distance_m, encode, is_geohash


def test_the_standard_examples_encode_and_decode() -> None:
    # The example of geohash.org and of the format's description.
    assert encode(57.64911, 10.40744, 11) == "u4pruydqqvj"
    latitude, longitude = decode("ezs42")
    assert latitude == pytest.approx(42.605, abs=0.03)
    assert longitude == pytest.approx(-5.603, abs=0.03)


def test_distances_between_cell_centres() -> None:
    paris, lyon = "u09tvw0", "u05kq3m"
    assert distance_m(paris, lyon) == pytest.approx(392_000, rel=0.02)
    assert distance_m(paris, paris) == 0
    assert distance_m(paris, lyon) == distance_m(lyon, paris)
    # Across the antimeridian the short way round counts.
    assert distance_m(encode(0, 179.99), encode(0, -179.99)) < 3_000


@pytest.mark.parametrize("text", ["", "ilo", "u09tvw0u09tvw", "U09", "u09 ", "ü"])
def test_what_is_not_a_geohash_is_refused(text: str) -> None:
    assert not is_geohash(text)
    with pytest.raises(MarketError) as refused:
        decode(text)
    assert refused.value.code == "bad_geohash"


@given(
    latitude=st.floats(-90, 90, allow_nan=False),
    longitude=st.floats(-180, 180, allow_nan=False),
    length=st.integers(5, 12),
)
def test_a_point_lies_in_its_cell(latitude: float, longitude: float, length: int) -> None:
    cell = encode(latitude, longitude, length)
    centre = decode(cell)
    # Latitude takes every second bit, longitude first: half a cell's height away at most.
    assert distance_m(cell, encode(*centre, length)) == 0
    assert abs(centre[0] - latitude) <= 90 / 2 ** (5 * length // 2) + 1e-9
