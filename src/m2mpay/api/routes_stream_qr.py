"""A stream's QR code, and the page a seller's device shows it on.

    GET /v1/streams/{id}/qr.svg|qr.png   the stream's QR code (the owner's token always)
    GET /v1/sessions/{id}/qr             a small HTML page with the QR code of the newest
                                         stream this node writes for a session it sells
    GET /v1/devices/{id}/qr              the same page for a device's display: the stream of
                                         its running sale (else of its latest one)
    GET /v1/streams/{id}/reader          the code's URL as JSON: what the web app links to

The code holds the reader page this node serves (`/provenance/reader/`, `reader_mount`)
with the stream id, the URL of its file (`/v1/streams/0x<id>.jsonl`) and, for a
restricted stream this node writes, its key, in the URL's fragment (`provenance.qr`).
The server derives that key itself (it is the stream's author), so no request ever
carries a key, and these answers, which do, go to the node's owner only: they need the
bearer token even when reads are public, are never cached, and send no referrer. Who
scans the code sends nothing of the fragment to any server either: a browser keeps it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from typing import Final

from fastapi import APIRouter, Request, Response

from m2mpay.api.auth import GuardedRoutes, Route
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import Hex32Path
from m2mpay.api.models_streams import StreamReaderLink
from m2mpay.api.routes_devices import DevicePath
from m2mpay.api.views import hex32, parse_hex32
from m2mpay.api.views_streams import StreamDesk, stream_file_path
from m2mpay.provenance.qr import StreamCode, qr_png, qr_svg
from m2mpay.provenance.stream_format import AccessMode, StreamRoot
from m2mpay.stream.state import SessionPhase

__all__ = ["READER_PATH", "stream_qr_routes"]

READER_PATH: Final = "/provenance"
"""Where the node mounts the web reader (`reader_mount`): its page is `<this>/reader/`."""
_PRIVATE: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_PAGE_POLICY: Final = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_SVG: Final = "image/svg+xml"
_PAGE: Final = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>m2mpay: {purpose}</title>
<style>body{{font-family:sans-serif;text-align:center;margin:1em}}img{{width:min(90vw,24em)}}
code{{word-break:break-all}}</style></head>
<body><h1>Scan to check where it came from</h1>
<img alt="QR code of provenance stream {stream}" src="data:image/svg+xml;base64,{svg}">
<p>{purpose} · {count} messages · session <code>{session}</code></p>
<p>stream <code>{stream}</code></p>
<p><a href="{url}">Open in the reader</a></p>
</body></html>
"""


def stream_qr_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "streams")
    desk = StreamDesk(gw)

    def owner_document(
        path: str, media: str, *, summary: str, description: str
    ) -> Callable[[Route], Route]:
        """A route for the owner only (what it answers holds the stream's key) whose
        answer is a document of `media`, an image or a page, not the JSON FastAPI would
        otherwise declare."""
        return routes.owner_read(
            path,
            response_class=Response,
            summary=summary,
            description=description,
            responses={200: {"content": {media: {"schema": {"type": "string"}}}}},
        )

    def code_url(request: Request, root: StreamRoot) -> str:
        base = str(request.base_url).rstrip("/")
        # A stream of subscribers has no one key to hand out: each reads it with its own.
        key = desk.key(root) if root.mode is AccessMode.RESTRICTED else None
        src = base + stream_file_path(root.stream_id)
        code = StreamCode(root.stream_id, src, key, gw.public_rpc)
        return code.url(f"{base}{READER_PATH}/reader/")

    async def image(request: Request, stream_id: str, kind: str) -> Response:
        root = await desk.root(parse_hex32(stream_id, "stream_id"))
        url = code_url(request, root)
        body, media = (qr_svg(url), _SVG) if kind == "svg" else (qr_png(url), "image/png")
        return Response(body, media_type=media, headers=_PRIVATE)

    def owner_image(kind: str, media: str) -> None:
        @owner_document(
            f"/v1/streams/{{stream_id}}/qr.{kind}",
            media,
            summary=f"A stream's QR code as {kind.upper()} (the node's owner only)",
            description="The reader page's URL with the stream in its fragment, its key "
            "too for a restricted stream this node writes: the token is needed even with "
            "public reads.",
        )
        async def qr(request: Request, stream_id: Hex32Path) -> Response:
            return await image(request, stream_id, kind)

    owner_image("svg", _SVG)
    owner_image("png", "image/png")

    @routes.owner_read(
        "/v1/streams/{stream_id}/reader",
        response_model=StreamReaderLink,
        summary="The URL that opens a stream in this node's web reader (the owner only)",
        description="The URL its QR code holds: the reader page with the stream in its "
        "fragment, and a restricted stream's key there too; the token is needed even "
        "with public reads.",
    )
    async def reader_link(
        request: Request, stream_id: Hex32Path, response: Response
    ) -> StreamReaderLink:
        root = await desk.root(parse_hex32(stream_id, "stream_id"))
        response.headers.update(_PRIVATE)
        keyed = root.mode is AccessMode.RESTRICTED and desk.key(root) is not None
        return StreamReaderLink(
            stream_id=hex32(root.stream_id), url=code_url(request, root), keyed=keyed
        )

    @owner_document(
        "/v1/sessions/{session_id}/qr",
        "text/html",
        summary="The page a device shows: the QR code of a session's stream (owner only)",
        description="The newest stream this node writes for the session; 404 until it "
        "has one. Its key is in the code: the token is needed even with public reads.",
    )
    async def session_page(request: Request, session_id: Hex32Path) -> Response:
        return await page(request, parse_hex32(session_id, "session_id"))

    @owner_document(
        "/v1/devices/{device_id}/qr",
        "text/html",
        summary="The page a device shows: the QR code of its running sale's stream (owner only)",
        description="The stream of the device's running sale, else of its latest one; 404 "
        "while it has sold nothing. For a display that knows only its device's id.",
    )
    async def device_page(request: Request, device_id: DevicePath) -> Response:
        return await page(request, _current_sale(gw, device_id))

    async def page(request: Request, session_id: bytes) -> Response:
        root = await desk.of_session(session_id)
        head = await desk.store.head(root.stream_id)
        url = code_url(request, root)
        text = _PAGE.format(
            purpose=html.escape(root.purpose),
            stream=hex32(root.stream_id),
            session=hex32(session_id),
            count=0 if head is None else head.index + 1,
            svg=base64.b64encode(qr_svg(url)).decode(),
            url=html.escape(url, quote=True),
        )
        headers = {**_PRIVATE, "Content-Security-Policy": _PAGE_POLICY}
        return Response(text, media_type="text/html", headers=headers)

    return routes.router


def _current_sale(gw: Gateway, device_id: str) -> bytes:
    """The device's running sale, else its latest one (by start); 404 if none."""
    book = gw.offer_book
    offers = {
        saved.offer.offer_id
        for saved in ([] if book is None else book.entries())
        if saved.device.partition("/")[0].lower() == device_id.lower()
    }
    sales = [
        i
        for i in gw.sessions.sessions()
        if i.we_sell and i.offer.offer_id in offers and i.phase != SessionPhase.REJECTED
    ]
    if not sales:
        raise ApiError(404, "no_sale", f"device {device_id} has sold nothing here")
    running = [i for i in sales if i.phase == SessionPhase.ACTIVE]
    return max(running or sales, key=lambda i: i.started_ms).session_id
