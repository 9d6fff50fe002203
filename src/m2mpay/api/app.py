"""The node's HTTP API (FastAPI): OpenAPI 3 at /openapi.json, docs at /docs (`/` leads
there), the device bus's messages in AsyncAPI at /asyncapi.json (`m2mpay.api.docs`).

    GET    /v1/info                         who and where this node is (public)
    GET    /v1/wallet                       balances on chain and in channels
    POST   /v1/wallet/transfers             send the native coin or a token on chain
    POST   /v1/wallet/faucet                dev chains: tokens and coin for this node
    POST   /v1/channels                     open and fund a channel
    GET    /v1/channels[/{id}]              list / show
    POST   /v1/channels/{id}/payments       pay
    POST   /v1/channels/{id}/close          close
    GET    /v1/offers                       the storefront (public)
    POST   /v1/offers, DELETE /v1/offers/{id}
    POST   /v1/sessions                     buy under an offer
    GET    /v1/sessions[/{id}[/receipt]]
    POST   /v1/sessions/{id}/stop|price|reverse
    POST   /v1/resales, GET /v1/resales     resell another node's offer; reconciliations
    GET    /v1/feeds[/{id}]                 live MQTT data for sale (public)
    POST   /v1/feeds, DELETE /v1/feeds/{id} sell a device's data; retire it
    POST   /v1/grants                       buy read access to another node's feed
    POST   /v1/grants/{id}/extend           more seconds of it
    GET    /v1/grants[/{id}]                grants bought and sold
    GET    /v1/events                       Server-Sent Events

Everything that moves money or changes state needs the node's bearer token; reads
need it unless reads are public. Errors have one shape (`m2mpay.api.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from fastapi import APIRouter, FastAPI

from m2mpay import __version__
from m2mpay.api.docs import install_docs
from m2mpay.api.errors import install_error_handlers
from m2mpay.api.gateway import Gateway
from m2mpay.api.models import ErrorBody
from m2mpay.api.routes_channels import channel_routes
from m2mpay.api.routes_events import event_routes
from m2mpay.api.routes_feeds import feed_routes
from m2mpay.api.routes_grants import grant_routes
from m2mpay.api.routes_info import info_routes
from m2mpay.api.routes_resales import resale_routes
from m2mpay.api.routes_sessions import session_routes
from m2mpay.asgi.errors import error_responses

__all__ = ["create_app"]

_ERRORS: Final = error_responses(
    {
        401: "Missing or wrong bearer token",
        404: "Unknown channel, session, offer, feed or grant",
        409: "Not possible now: closed channel, busy, not enough funds, peer unreachable…",
        413: "The body is larger than the API takes",
        415: "The body is not JSON",
        422: "Malformed input; `field` names it",
        502: "The chain failed",
        503: "The node is not running",
        504: "Timed out",
    },
    ErrorBody,
)

_DESCRIPTION: Final = """\
Amounts are integer strings in the asset's smallest unit; addresses and ids are 0x-hex.
Everything that moves money or changes state needs the node's bearer token (**Authorize**
above): `m2mpay node` prints it once when the node first starts. The node's storefront
(`/v1/info`, `/v1/offers`, `/v1/feeds`) is public. Every error is
`{"error": {"code", "message", "field"}}`.

Devices join the node's bus over a WebSocket at `/v1/devices/ws`; its messages are described
in AsyncAPI at [/asyncapi.json](/asyncapi.json).
"""


def create_app(gw: Gateway, *, extra: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="m2mpay node",
        version=__version__,
        summary="Payment channels and metered sessions between machines",
        description=_DESCRIPTION,
        responses=_ERRORS,
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN: `install_docs` serves
        # Swagger UI from the node instead.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app, public_reads=gw.credentials.public_reads)
    for router in (
        info_routes(gw),
        channel_routes(gw),
        session_routes(gw),
        resale_routes(gw),
        feed_routes(gw),
        grant_routes(gw),
        event_routes(gw),
        *extra,
    ):
        app.include_router(router)
    app.state.gateway = gw
    return app
