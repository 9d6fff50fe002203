"""The QR code of a provenance stream: what it holds, version 1, and how it is drawn.

A QR code holds one URL, the web reader's page with the stream in its fragment::

    <reader page URL>#m2mpay-stream=1&id=<stream id: 64 hex>&src=<the stream file's URL>
        [&key=<hex>][&rpc=<URL>]

The fragment is ``application/x-www-form-urlencoded`` (``src`` percent-encoded), each field
once, no other field: ``m2mpay-stream`` is the format's version, ``id`` the stream id in
lowercase hex, ``src`` the absolute http(s) URL of the stream's export file (`stream_file`),
``key`` a restricted stream's key in lowercase hex, left out for a public stream, ``rpc``
(optional, absolute http(s)) a ledger's JSON-RPC URL against which the reader checks the
file's anchor proofs; a code without it is read as before. The key is in the fragment
because a browser never sends a fragment to any server: neither the page's host nor the
file's sees it. A phone's camera opens the URL as it is; the reader page (``web/reader``,
served by `reader_app`) reads the fragment in the browser, so the same code works scanned by
the page or by the phone.

A key of the wrong size still parses: `verify` names it ``wrong_key``, as a reader given a
code cut short must see. Anything else that is not this format is a `QrFormatError`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import segno

from m2mpay.errors import ProvenanceError

__all__ = [
    "FRAGMENT_VERSION",
    "QrFormatError",
    "StreamCode",
    "parse_stream_code",
    "qr_png",
    "qr_svg",
]

FRAGMENT_VERSION: Final = 1
_FIELDS: Final = ("m2mpay-stream", "id", "src", "key", "rpc")
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})*")
_STREAM_ID: Final = re.compile(r"[0-9a-f]{64}")


class QrFormatError(ProvenanceError):
    """A QR code (or fragment) that is not a provenance stream code of a version this
    reads; its code is ``qr_format``."""

    def __init__(self, message: str) -> None:
        super().__init__("qr_format", message)


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # a stray bracket: "Invalid IPv6 URL"
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True, slots=True)
class StreamCode:
    """What a stream's QR code says: which stream, where its file is, its key, and the
    ledger to check its anchors against (`rpc`, a JSON-RPC URL)."""

    stream_id: bytes
    src: str
    key: bytes | None = None
    rpc: str | None = None

    def __post_init__(self) -> None:
        if len(self.stream_id) != 32:
            raise ValueError("a stream id is 32 bytes")
        if not _http_url(self.src):
            raise ValueError("src is an absolute http(s) URL")
        if self.rpc is not None and not _http_url(self.rpc):
            raise ValueError("rpc is an absolute http(s) URL")

    def fragment(self) -> str:
        fields = {"m2mpay-stream": str(FRAGMENT_VERSION), "id": self.stream_id.hex()}
        fields["src"] = self.src
        if self.key is not None:
            fields["key"] = self.key.hex()
        if self.rpc is not None:
            fields["rpc"] = self.rpc
        return urlencode(fields)

    def url(self, reader_url: str) -> str:
        """The URL a QR code holds: the reader page at `reader_url`, this in its fragment."""
        if not _http_url(reader_url) or "#" in reader_url:
            raise ValueError("the reader page is an absolute http(s) URL without a fragment")
        return f"{reader_url}#{self.fragment()}"


def parse_stream_code(text: str) -> StreamCode:
    """The stream code in a QR code's text (a URL with the fragment, or the fragment
    alone, "#" included); `QrFormatError` if it holds none of this format."""
    if "#" not in text:
        raise QrFormatError("the code holds no stream fragment")
    fragment = text.split("#", 1)[1]
    try:
        pairs = parse_qsl(fragment, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise QrFormatError("the fragment is not name=value fields") from None
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - set(_FIELDS))
    if unknown:
        raise QrFormatError(f"unknown field {unknown[0]!r}")
    if len(set(names)) != len(names):
        raise QrFormatError("a field is given twice")
    fields = dict(pairs)
    version = fields.get("m2mpay-stream")
    if version is None:
        raise QrFormatError("not an m2mpay provenance stream code")
    if version != str(FRAGMENT_VERSION):
        raise QrFormatError(f"stream code version {version!r}; this reads {FRAGMENT_VERSION}")
    stream_id = fields.get("id", "")
    if not _STREAM_ID.fullmatch(stream_id):
        raise QrFormatError("the stream id is not 64 lowercase hex digits")
    src = fields.get("src", "")
    if not _http_url(src):
        raise QrFormatError("src is not an absolute http(s) URL")
    key = fields.get("key")
    if key is not None and not _HEX.fullmatch(key):
        raise QrFormatError("the key is not lowercase hex")
    rpc = fields.get("rpc")
    if rpc is not None and not _http_url(rpc):
        raise QrFormatError("rpc is not an absolute http(s) URL")
    return StreamCode(
        bytes.fromhex(stream_id), src, None if key is None else bytes.fromhex(key), rpc
    )


def _qr(url: str) -> segno.QRCode:
    # Error correction M: a printed code stays readable with a scratch or a glare.
    return segno.make_qr(url, error="m", boost_error=False)


def qr_svg(url: str, *, scale: int = 4) -> bytes:
    """The QR code of `url` as an SVG document (dark on white, with its quiet zone)."""
    return _png_or_svg(url, "svg", scale)


def qr_png(url: str, *, scale: int = 8) -> bytes:
    """The QR code of `url` as a PNG image (greyscale, with its quiet zone)."""
    return _png_or_svg(url, "png", scale)


def _png_or_svg(url: str, kind: str, scale: int) -> bytes:
    out = io.BytesIO()
    _qr(url).save(out, kind=kind, scale=scale, border=4)
    return out.getvalue()
