"""Geohashes, as listings give a service's place: decoded to the centre of their cell,
and the great-circle distance between two, which discovery sorts by (nearest first).

Pure functions; a string that is not a geohash raises `MarketError("bad_geohash")`.
"""

from __future__ import annotations

import math
from typing import Final

from m2mpay.errors import MarketError

__all__ = ["EARTH_RADIUS_M", "decode", "distance_m", "encode", "is_geohash"]

_ALPHABET: Final = "0123456789bcdefghjkmnpqrstuvwxyz"
_VALUE: Final = {char: index for index, char in enumerate(_ALPHABET)}
EARTH_RADIUS_M: Final = 6_371_008.8  # the mean radius (IUGG)
_MAX_LENGTH: Final = 12  # as the registry takes them: ~37 mm × 19 mm cells


def is_geohash(text: str) -> bool:
    return 0 < len(text) <= _MAX_LENGTH and all(char in _VALUE for char in text)


def decode(geohash: str) -> tuple[float, float]:
    """The centre of the geohash's cell: (latitude, longitude) in degrees."""
    if not is_geohash(geohash):
        raise MarketError(
            "bad_geohash",
            f"{geohash[:40]!r} is not a geohash (1 to {_MAX_LENGTH} of {_ALPHABET})",
        )
    lat, lon = [-90.0, 90.0], [-180.0, 180.0]
    even = True  # bits alternate, longitude first
    for char in geohash:
        value = _VALUE[char]
        for shift in range(4, -1, -1):
            half = lon if even else lat
            middle = (half[0] + half[1]) / 2
            if value >> shift & 1:
                half[0] = middle
            else:
                half[1] = middle
            even = not even
    return (lat[0] + lat[1]) / 2, (lon[0] + lon[1]) / 2


def encode(latitude: float, longitude: float, length: int = 9) -> str:
    """The geohash of `length` characters whose cell holds the point."""
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180 and 0 < length <= _MAX_LENGTH):
        raise MarketError("bad_geohash", "a point is latitude -90..90, longitude -180..180")
    lat, lon = [-90.0, 90.0], [-180.0, 180.0]
    chars, even = [], True
    for _ in range(length):
        value = 0
        for _ in range(5):
            half, point = (lon, longitude) if even else (lat, latitude)
            middle = (half[0] + half[1]) / 2
            value <<= 1
            if point >= middle:
                value |= 1
                half[0] = middle
            else:
                half[1] = middle
            even = not even
        chars.append(_ALPHABET[value])
    return "".join(chars)


def distance_m(a: str, b: str) -> float:
    """Metres between the centres of two geohashes' cells (haversine)."""
    (lat1, lon1), (lat2, lon2) = decode(a), decode(b)
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
