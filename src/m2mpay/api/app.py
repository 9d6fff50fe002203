"""The node's HTTP API (FastAPI): OpenAPI 3 at /openapi.json, docs at /docs, the device
bus's messages in AsyncAPI at /asyncapi.json (`m2mpay.api.docs`), the web app at /app/
(`/` leads there; `m2mpay.api.webapp`).

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
    POST   /v1/offers/{id}/transfer-sales   sell an offer to plain transfers to its device
    GET    /v1/transfer-sales               those offers, and every transfer counted
    GET    /v1/feeds[/{id}]                 live MQTT data for sale (public)
    POST   /v1/feeds, DELETE /v1/feeds/{id} sell a device's data; retire it
    POST   /v1/grants                       buy read access to another node's feed
    POST   /v1/grants/{id}/extend           more seconds of it
    GET    /v1/grants[/{id}]                grants bought and sold
    GET    /v1/streams[/{id}[/messages]]    provenance streams (by id: public)
    GET    /v1/streams/{id}/verify          the node's own verification of one
    GET    /v1/streams/{id}.jsonl           a stream's file (public; what QR codes point at)
    GET    /v1/streams/{id}/qr.svg|png      its QR code, key included (owner only)
    GET    /v1/sessions/{id}/qr             a device's page: its session's stream's QR code
    POST   /v1/escrows                      deposit for a seller, released by its meter
    GET    /v1/escrows[/{id}]               the escrows this node is buyer or seller of
    POST   /v1/escrows/{id}/claim|refund    the meter's signed reading; the deposit back
    POST   /v1/audit                        the signed audit report of a value chain
    GET    /v1/tokens[/{address}]           tokens the deployment's factory made
    POST   /v1/tokens                       create one with the node's key
    GET    /v1/dex/pools, /v1/dex/quote     the exchange's pools; what a swap pays now
    POST   /v1/dex/swaps                    swap exactly an amount for at least a minimum
    POST   /v1/dex/liquidity[/removals]     shares of a pool for two assets, and back
    GET    /v1/registry/services[/{id}]     services listed on chain: by kind, place, price, score
    POST   /v1/registry/services[/{id}/offer]  list one; check its endpoint's offer
    PUT|DELETE /v1/registry/services/{id}   update, withdraw one of ours
    POST   /v1/registry/ratings             rate a session's other party with its receipt
    GET    /v1/registry/scores/{address}    a party's reputation, per asset
    GET    /v1/explorer/blocks[/{n|hash}]   the chain's blocks, newest first; one block
    GET    /v1/explorer/transactions/{hash} a transaction, its call and events decoded
    GET    /v1/explorer/addresses/{address} balances, contract, token transfers
    GET    /v1/explorer/channels/{id}       a channel's history on chain
    GET    /v1/explorer/search?q=           a block, transaction, channel or address
    GET    /v1/peers                        the node's peers: endpoint, linked, channels
    GET    /v1/events                       Server-Sent Events
    GET    /provenance/reader/              the web reader page (`reader_mount`)
    GET    /app/                            the web app (`webapp_routes`)

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
from m2mpay.api.routes_audit import node_audit_routes
from m2mpay.api.routes_channels import channel_routes
from m2mpay.api.routes_dex import dex_routes
from m2mpay.api.routes_escrow import escrow_routes
from m2mpay.api.routes_events import event_routes
from m2mpay.api.routes_explorer import explorer_routes
from m2mpay.api.routes_feeds import feed_routes
from m2mpay.api.routes_grants import grant_routes
from m2mpay.api.routes_info import info_routes
from m2mpay.api.routes_registry import registry_routes
from m2mpay.api.routes_resales import resale_routes
from m2mpay.api.routes_sessions import session_routes
from m2mpay.api.routes_storefront import storefront_routes
from m2mpay.api.routes_stream_qr import READER_PATH, stream_qr_routes
from m2mpay.api.routes_streams import stream_routes
from m2mpay.api.routes_tokens import token_routes
from m2mpay.api.routes_transfer_sales import transfer_sale_routes
from m2mpay.api.webapp import webapp_routes
from m2mpay.asgi.errors import error_responses
from m2mpay.provenance.reader_app import reader_mount

__all__ = ["create_app"]

_ERRORS: Final = error_responses(
    {
        401: "Missing or wrong bearer token",
        404: "Unknown channel, session, offer, feed, grant, stream, escrow, pool, token or listing",
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
(`/v1/info`, `/v1/offers`, `/v1/feeds`) is public, and so is a provenance stream known by
its id (`/v1/streams/{id}…`: what its QR code gives). Every error is
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
        storefront_routes(gw),
        resale_routes(gw),
        transfer_sale_routes(gw),
        feed_routes(gw),
        grant_routes(gw),
        stream_routes(gw),
        stream_qr_routes(gw),
        node_audit_routes(gw),
        escrow_routes(gw),
        token_routes(gw),
        dex_routes(gw),
        registry_routes(gw),
        explorer_routes(gw),
        event_routes(gw),
        *extra,
    ):
        app.include_router(router)
    if gw.streams is not None:
        # The reader page that the streams' QR codes open, served by the node itself; the
        # files it reads are the API's (/v1/streams/0x<id>.jsonl), with their proofs.
        app.router.routes.append(reader_mount(None, READER_PATH))
    app.router.routes.extend(webapp_routes())
    app.state.gateway = gw
    return app
