"""What the QR code tests share: the pixels of segno's PNG, read without an image library."""

from __future__ import annotations

import struct
import zlib

__all__ = ["png_grey"]


def png_grey(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of pixels (0 or 255 a byte) of segno's PNG: 1-bit
    greyscale, rows filtered by None or Up (what segno writes; anything else fails)."""
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert (depth, colour) == (1, 0), "segno writes 1-bit greyscale"
    at, data = 8, b""
    while at < len(png):
        (size,) = struct.unpack(">I", png[at : at + 4])
        if png[at + 4 : at + 8] == b"IDAT":
            data += png[at + 8 : at + 8 + size]
        at += 12 + size
    raw = zlib.decompress(data)
    stride = (width + 7) // 8
    rows, previous = [], bytes(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        assert line[0] in (0, 2), "segno filters rows by None or Up"
        row = bytes(line[1:])
        if line[0] == 2:
            row = bytes((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        previous = row
        rows.append(bytes(255 if row[x // 8] >> (7 - x % 8) & 1 else 0 for x in range(width)))
    return width, height, rows
