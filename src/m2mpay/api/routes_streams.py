"""Provenance streams the node holds: listed, shown, paged, exported, verified.

    GET /v1/streams                      the streams (a read: the token unless reads are public)
    GET /v1/streams/{id}                 one stream: its root, count, head, anchors (public)
    GET /v1/streams/{id}/messages        its messages, a page at a time (public)
    GET /v1/streams/{id}.jsonl           its file, version 2 with its anchor proofs (public)
    GET /v1/streams/{id}/verify          the node's own verification report (a read)

A stream known by its id is public, as a storefront is: the id is what its QR code
gives (`routes_stream_qr`), the reader page fetches the file without credentials from
any origin, and nothing in it is secret (a private stream's payloads are sealed and
its key never reaches a server: it is in the QR code's fragment). The listing, which
tells every stream and session this node has, and the node's own verification, which
costs it a signature check a message (anyone can verify the public file instead),
follow the node's `--public-reads`.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Response

from m2mpay.api.auth import GuardedRoutes
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import ADDRESS, HEX32, Hex32Path
from m2mpay.api.models_streams import (
    AnchorCheckView,
    StreamList,
    StreamMessageList,
    StreamProblemView,
    StreamVerification,
    StreamView,
)
from m2mpay.api.views import parse_hex32
from m2mpay.api.views_streams import StreamDesk, message_view
from m2mpay.crypto import Address
from m2mpay.provenance.anchor_proof import AnchorProof, verify_anchor
from m2mpay.provenance.stream_anchor import load_anchored
from m2mpay.provenance.stream_file import stream_file_lines
from m2mpay.provenance.stream_format import AccessMode
from m2mpay.provenance.stream_store import MAX_READ
from m2mpay.provenance.streams import ProvenanceStream

__all__ = ["STREAM_FILE_TYPE", "stream_routes"]

STREAM_FILE_TYPE: Final = "application/x-ndjson"
_PAGE: Final = 1000
# The file is fetched by reader pages of any node (an upstream link), without credentials.
_FILE_HEADERS: Final = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}

AddressQuery = Annotated[
    str | None,
    Query(pattern=ADDRESS, description="Only this author's streams."),
]
SessionQuery = Annotated[
    str | None, Query(pattern=HEX32, description="Only the streams of this metered session.")
]


def stream_routes(gw: Gateway) -> APIRouter:
    routes = GuardedRoutes(gw.credentials, "streams")
    desk = StreamDesk(gw)

    @routes.read(
        "/v1/streams",
        StreamList,
        summary="The provenance streams this node holds, oldest first",
        description="`session` finds the streams of a metered session among those this "
        "node writes (it reads their first record).",
    )
    async def list_streams(
        author: AddressQuery = None,
        session: SessionQuery = None,
        limit: Annotated[int, Query(ge=1, le=MAX_READ)] = 1000,
    ) -> StreamList:
        store = desk.store
        if session is not None:
            wanted = parse_hex32(session, "session")
            by = Address(author) if author else gw.node.address
            mine = await store.roots(by, MAX_READ)
            roots = [r for r in mine if await desk.session_of(r) == wanted][:limit]
        else:
            roots = await store.roots(Address(author) if author else None, limit)
        return StreamList(streams=[await desk.summary(root) for root in roots])

    # Before `/v1/streams/{stream_id}`, which would take the whole name as an id.
    @routes.router.get(
        "/v1/streams/{stream_id}.jsonl",
        response_class=Response,
        summary="A stream's file (public): what the reader page and QR codes fetch",
        description="JSON lines, version 2 when it carries the proofs of its anchored heads "
        "(`m2mpay.provenance.stream_file`); served to any origin.",
        responses={200: {"content": {STREAM_FILE_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def stream_file(stream_id: Hex32Path) -> Response:
        stream, anchors = await _loaded(parse_hex32(stream_id, "stream_id"))
        body = b"".join(stream_file_lines(stream.root, list(stream.messages), anchors))
        return Response(body, media_type=STREAM_FILE_TYPE, headers=_FILE_HEADERS)

    @routes.router.get("/v1/streams/{stream_id}", response_model=StreamView, summary="A stream")
    async def show_stream(stream_id: Hex32Path) -> StreamView:
        return await desk.view(await desk.root(parse_hex32(stream_id, "stream_id")))

    @routes.router.get(
        "/v1/streams/{stream_id}/messages",
        response_model=StreamMessageList,
        summary="A stream's messages from `start`, in order (public)",
    )
    async def messages(
        stream_id: Hex32Path,
        start: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=_PAGE)] = 100,
    ) -> StreamMessageList:
        root = await desk.root(parse_hex32(stream_id, "stream_id"))
        found = await desk.store.messages(root.stream_id, start, limit + 1)
        return StreamMessageList(
            stream_id=stream_id.lower(),
            start=start,
            messages=[message_view(m, root) for m in found[:limit]],
            next=start + limit if len(found) > limit else None,
        )

    @routes.read(
        "/v1/streams/{stream_id}/verify",
        StreamVerification,
        summary="Verify a stream as the node holds it",
        description="Every message in order up to the first problem, named by its code, and "
        "each anchored head's proof against the chain.",
    )
    async def verify_stream(stream_id: Hex32Path) -> StreamVerification:
        stream, anchors = await _loaded(parse_hex32(stream_id, "stream_id"))
        head = stream.messages[-1] if stream.messages else None
        keys = desk.keys(stream.root, head)
        payloads = stream.root.mode is AccessMode.PUBLIC or keys is not None
        verified = stream.verify(keys, payloads=payloads)
        problem = verified.problem
        return StreamVerification(
            stream_id=stream_id.lower(),
            ok=verified.ok,
            verified=len(verified.messages),
            count=len(stream.messages),
            payloads_checked=payloads,
            problem=None
            if problem is None
            else StreamProblemView(
                code=problem.code.value,
                position=problem.position,
                index=problem.index,
                detail=problem.detail,
            ),
            anchors=[await _checked(proof) for proof in anchors],
        )

    async def _loaded(stream_id: bytes) -> tuple[ProvenanceStream, list[AnchorProof]]:
        await desk.root(stream_id)  # 404 before anything else
        return await load_anchored(desk.store, gw.stream_anchorer, stream_id)

    async def _checked(proof: AnchorProof) -> AnchorCheckView:
        check = await verify_anchor(proof, gw.ledger)  # a failing chain is a 502
        return AnchorCheckView(
            head_index=None if check.message is None else check.message.index,
            ok=check.ok,
            problem=None if check.problem is None else check.problem.value,
            detail=check.detail,
            block_number=check.block_number,
        )

    return routes.router
