"""`POST /v1/audit`: the node issues the signed audit report of a value chain.

From the node's stream store (`Gateway.streams`, the daemon's `streams`), along the
upstream links of the stream asked for, anchors and channels checked against the node's
chain (`provenance.audit_sources`).
The answer is the signed report as JSON (its canonical form, what `m2mpay audit verify`
checks), or the page (`text/html`) or the PDF (`application/pdf`) an authority reads,
chosen by the body's `format` or else by `Accept`. It needs the token: the node signs
what it answers with its own key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Final

import httpx
from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from m2mpay.api.auth import Credentials, GuardedRoutes
from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import Hex32
from m2mpay.api.views_streams import kept_streams
from m2mpay.chain.ledger import Ledger
from m2mpay.crypto import PrivateKey
from m2mpay.errors import ProvenanceError
from m2mpay.provenance import StreamAnchorer, StreamStore
from m2mpay.provenance.audit import DEFAULT_INTERVAL_MS, MAX_INTERVALS, AuditRange
from m2mpay.provenance.audit_html import Wording
from m2mpay.provenance.audit_out import MEDIA_TYPES, ReportFormat, render_report
from m2mpay.provenance.audit_sources import Fetch, StreamLibrary, audit_chain, fetch_known
from m2mpay.provenance.session_streams import KnownStream
from m2mpay.provenance.stream_verify import ReadKey

__all__ = ["AuditRequest", "audit_routes", "node_audit_routes"]

_MS: Final = 2**53 - 1
_FETCH_TIMEOUT_S: Final = 30.0  # an upstream seller's node answering with its stream file


class AuditRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream: Hex32 = Field(description="The last sale's stream: the chain is followed upstream.")
    from_ms: Annotated[int, Field(ge=0, le=_MS)] | None = Field(
        None, description="Start of the range (epoch ms); the streams' first record if left out."
    )
    to_ms: Annotated[int, Field(ge=0, le=_MS)] | None = Field(
        None, description="End of the range, excluded; the streams' last record if left out."
    )
    interval_ms: Annotated[int, Field(ge=1000, le=_MS)] = Field(
        DEFAULT_INTERVAL_MS, description=f"Length of an interval; at most {MAX_INTERVALS} a hop."
    )
    credit_window: Annotated[int, Field(ge=0, le=_MS)] = Field(
        0, description="Units a seller may deliver ahead of payment before it is flagged."
    )
    keys: dict[Hex32, Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]] = Field(
        default_factory=dict,
        max_length=64,
        description="Keys of restricted upstream streams this node did not write, by stream.",
    )
    format: ReportFormat | None = Field(None, description="json, html or pdf; else by Accept.")


def _format(asked: ReportFormat | None, accept: str) -> ReportFormat:
    if asked is not None:
        return asked
    if "application/pdf" in accept:
        return "pdf"
    if "text/html" in accept:
        return "html"
    return "json"


def audit_routes(
    credentials: Credentials,
    streams: StreamStore | Callable[[], StreamStore | None],
    key: PrivateKey,
    *,
    ledger: Ledger | None = None,
    anchorer: Callable[[], StreamAnchorer | None] | None = None,
    fetch: Fetch | None = None,
    words: Callable[[], Awaitable[Wording]] | None = None,
    bought: Callable[[], Mapping[bytes, KnownStream]] | None = None,
) -> APIRouter:
    """The audit route over `streams` (or what the callable gives at each request: 409
    while None), reports signed by `key` (the node's), anchors and channels checked
    against `ledger` (the node's chain; without it anchors only offline), upstream
    streams the store lacks asked of `fetch` (`fetch_from` the sellers' nodes), amounts
    in the `words` it gives (the token's decimals and symbol); the streams `bought` gives
    (a buyer's, told by its sellers) fetched from where they are, read with their keys,
    so a buyer audits the chain it bought from."""
    routes = GuardedRoutes(credentials, "audit")

    def store() -> StreamStore:
        return kept_streams(streams if isinstance(streams, StreamStore) else streams())

    @routes.write(
        "/v1/audit",
        None,
        summary="The signed audit report of a value chain, as JSON, HTML or PDF",
        responses={
            200: {"content": {media: {} for media in MEDIA_TYPES.values()}},
            404: {"description": "No such stream in this node's store."},
        },
    )
    async def audit(body: AuditRequest, request: Request) -> Response:
        kept = store()
        start = bytes.fromhex(body.stream[2:])
        known = {} if bought is None else bought()
        if await kept.root(start) is None and start not in known:
            raise ApiError(404, "unknown_stream", f"no stream {body.stream} here", "stream")
        if body.to_ms is not None and body.from_ms is not None and body.to_ms < body.from_ms:
            raise ApiError(422, "invalid_input", "to_ms is before from_ms", "to_ms")
        keys: dict[bytes, ReadKey] = {stream_id: k.key for stream_id, k in known.items()}
        keys.update({bytes.fromhex(s[2:]): bytes.fromhex(k[2:]) for s, k in body.keys.items()})
        span = AuditRange(body.from_ms, body.to_ms, body.interval_ms, body.credit_window)
        try:
            async with httpx.AsyncClient(timeout=_FETCH_TIMEOUT_S) as http:
                library = StreamLibrary(
                    store=kept,
                    anchorer=None if anchorer is None else anchorer(),
                    fetch=fetch_known(http, known, fetch) if known else fetch,
                    keys=keys,
                    author=key,
                )
                signed = await audit_chain(library, start, key, span=span, ledger=ledger)
        except ProvenanceError as exc:
            if exc.code == "bad_range":
                raise ApiError(422, "invalid_input", exc.message, "interval_ms") from None
            if exc.code == "chain_unavailable":
                raise ApiError(503, "ledger_unavailable", exc.message) from None
            raise
        chosen = _format(body.format, request.headers.get("accept", ""))
        wording = None if words is None else await words()
        return Response(render_report(signed, chosen, wording), media_type=MEDIA_TYPES[chosen])

    return routes.router


def node_audit_routes(gw: Gateway) -> APIRouter:
    """The node's audit route: its streams, anchorer, key and chain as the gateway holds
    them at each request; amounts in its token (decimals asked of the chain once)."""
    decimals: list[int] = []

    async def words() -> Wording:
        if not decimals:
            decimals.append(await gw.token.decimals())
        return Wording(decimals[0], gw.deployment.token_symbol)

    return audit_routes(
        gw.credentials,
        lambda: gw.streams,
        gw.node.key,
        ledger=gw.ledger,
        anchorer=lambda: gw.stream_anchorer,
        words=words,
        bought=lambda: {} if gw.streams_bought is None else gw.streams_bought(),
    )
