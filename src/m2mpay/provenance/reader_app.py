"""Serving the web reader and stream files over HTTP: one Starlette `Mount` any ASGI app
(the node's API, a device's small server, a test) adds to its routes.

Under the mount's path::

    /reader/                 the reader page and its bundle (`READER_ASSETS`, built by
                             `make` from web/reader with the pinned esbuild; never a CDN)
    /streams/0x<id>.jsonl    the stream's export file (`stream_file`), as the store holds it,
                             with the proofs of its anchored heads when an anchorer is given
                             (version 2), which the reader checks against the messages

A stream file is served to any origin (``Access-Control-Allow-Origin: *``): a reader page
served by one node fetches a stream another node holds (an upstream link). The file
holds nothing secret (a restricted stream's payloads are sealed; its key is only in the
QR code's fragment, which no server receives), and requests carry no credentials.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from m2mpay.errors import ProvenanceError
from m2mpay.provenance.stream_anchor import StreamAnchorer, load_anchored
from m2mpay.provenance.stream_file import stream_file_lines
from m2mpay.provenance.stream_store import StreamStore

__all__ = ["READER_ASSETS", "reader_mount", "stream_file_path"]

READER_ASSETS: Final = Path(__file__).parent / "reader_assets"
_STREAM_FILE: Final = re.compile(r"0x([0-9a-f]{64})\.jsonl")
_MEDIA_TYPE: Final = "application/x-ndjson"


def stream_file_path(stream_id: bytes) -> str:
    """Where a stream's file is under the mount (`reader_mount`)."""
    return f"/streams/0x{stream_id.hex()}.jsonl"


def reader_mount(
    store: StreamStore | None,
    path: str = "/provenance",
    *,
    assets: Path = READER_ASSETS,
    anchorer: StreamAnchorer | None = None,
) -> Mount:
    """The reader page and `store`'s stream files under `path`; the files carry the
    proofs of their anchored heads if `anchorer` (the store's) is given. Without a store,
    the page alone (a server that serves its files elsewhere, as the node's API does)."""

    async def stream_file(request: Request) -> Response:
        assert store is not None  # the route exists only with a store
        found = _STREAM_FILE.fullmatch(request.path_params["name"])
        if found is None:
            raise HTTPException(404, "a stream file is named 0x<stream id>.jsonl")
        try:
            stream, anchors = await load_anchored(store, anchorer, bytes.fromhex(found.group(1)))
        except ProvenanceError as exc:
            if exc.code != "unknown_stream":
                raise
            raise HTTPException(404, exc.message) from None
        body = b"".join(stream_file_lines(stream.root, list(stream.messages), anchors))
        headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
        return Response(body, media_type=_MEDIA_TYPE, headers=headers)

    page = Mount(
        "/reader", StaticFiles(directory=assets, html=True, check_dir=False), name="reader"
    )
    if store is None:
        return Mount(path, routes=[page])
    files = Route("/streams/{name}", stream_file, methods=["GET"], name="stream-file")
    return Mount(path, routes=[files, page])
