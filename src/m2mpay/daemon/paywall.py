"""The HTTP 402 paywall in the node process, in front of the node's API on the same port.

With `PaywallConfig.price` set, paths under `/x402/` are sold, paid in `batch-settlement`
on channels with this node (listed first: its commitments are taken by the node's own
channel engine) or in `exact` (the node its own facilitator, its book in
`DATA_DIR/paywall.sqlite3`); every other path is the API as before.

- `GET /x402/devices/{device_id}/telemetry?after=SEQ&limit=N`: a device's telemetry
  records (as the API's `/v1/devices/{id}/telemetry`, without its token), `price` a request.
- `/x402/upstream/…` with `upstream` set: the reverse proxy to that service (the
  prefix dropped), `upstream_price` per `upstream_per` (per byte: the upstream's
  declared length; per second: paid as the response flows, in a channel).
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

from m2mpay.access.channel_scheme import ChannelScheme
from m2mpay.access.exact import ExactEvm
from m2mpay.access.nonce_book import NonceBook
from m2mpay.access.paywall import App, Paywall, Receive, Scope, Send
from m2mpay.access.pricing import Per, Price, PricedRoute, PriceList
from m2mpay.access.proxy import UpstreamProxy
from m2mpay.asgi.errors import error_body, send_json
from m2mpay.bus.server import DeviceBus
from m2mpay.chain.ledger import Ledger
from m2mpay.chain.token import TokenContract
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import DeviceError
from m2mpay.node import Node

__all__ = ["PAID_PREFIX", "NodePaywall", "PaywallConfig"]

PAID_PREFIX: Final = "/x402/"
_UPSTREAM: Final = "/x402/upstream"
_TELEMETRY: Final = re.compile(r"/x402/devices/(0x[0-9a-fA-F]{40})/telemetry")
_MAX_INT: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class PaywallConfig:
    price: int = 0  # per request of the node's own paid routes; 0: no paywall
    upstream: str | None = None
    upstream_price: int | None = None  # default: `price`
    upstream_per: Per = Per.REQUEST
    seconds: int = 1  # what one payment buys of a per-second response, before top-ups

    @property
    def enabled(self) -> bool:
        return self.price > 0


class NodePaywall:
    """The ASGI app the node serves: the paywall's paths, then the API."""

    def __init__(
        self,
        api: App,
        config: PaywallConfig,
        *,
        node: Node,
        bus: DeviceBus,
        ledger: Ledger,
        asset: Address,
        key: PrivateKey,
        data_dir: Path,
    ) -> None:
        self._api = api
        self._bus = bus
        self._proxy = UpstreamProxy(config.upstream) if config.upstream else None
        self.exact = ExactEvm(
            ledger, TokenContract(ledger, asset), key, NonceBook(data_dir / "paywall.sqlite3")
        )
        upstream = Price(
            config.upstream_price or config.price, asset, config.upstream_per, config.seconds
        )
        prices = PriceList(
            [
                PricedRoute(f"{_UPSTREAM}/*", upstream),
                PricedRoute(_UPSTREAM, upstream),
                PricedRoute(f"{PAID_PREFIX}*", Price(config.price, asset)),
            ]
        )
        self.paywall = Paywall(
            self._sold,
            prices,
            [ChannelScheme(node, asset), self.exact],
            size_of=self._size_of,
            description="sold by an m2mpay node",
        )

    async def start(self) -> None:
        await self.exact.start()

    async def stop(self) -> None:
        if self._proxy is not None:
            await self._proxy.aclose()
        await self.exact.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not str(scope.get("path", "")).startswith(
            PAID_PREFIX
        ):
            await self._api(scope, receive, send)
            return
        if scope["type"] == "http" and not _is_upstream(scope):
            # What cannot be served is refused before any payment is asked or taken.
            refused = self._unservable(scope)
            if refused is not None:
                await send_json(send, refused[0], refused[1])
                return
        await self.paywall(scope, receive, send)

    def _unservable(self, scope: Scope) -> tuple[int, dict[str, Any]] | None:
        path = scope["path"]
        found = _TELEMETRY.fullmatch(path)
        if found is None or scope["method"] != "GET":
            return 404, error_body("not_found", f"nothing is sold at {path}")
        try:
            self._bus.device(found.group(1))
        except DeviceError as exc:
            return 404, error_body(exc.code, str(exc))
        query = _query(scope)
        after, limit = query.get("after", "0"), query.get("limit", "100")
        if not after.isdigit() or int(after) > _MAX_INT:
            return 422, error_body("invalid_input", "after: a seq, 0 or more", "after")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            return 422, error_body("invalid_input", "limit: 1 to 1000", "limit")
        return None

    async def _size_of(self, scope: Scope) -> int | None:
        if self._proxy is None or not _is_upstream(scope):
            return None
        return await self._proxy.size_of(_unprefixed(scope))

    async def _sold(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What a paid request gets (the paywall let it through)."""
        path = scope["path"]
        if _is_upstream(scope):
            if self._proxy is None:
                await send_json(send, 404, error_body("not_found", "no upstream is sold here"))
                return
            await self._proxy(_unprefixed(scope), receive, send)
            return
        found = _TELEMETRY.fullmatch(path)
        assert found is not None  # checked before it was paid for
        query = _query(scope)
        records = await self._bus.telemetry(
            found.group(1),
            0,
            after_seq=int(query.get("after", "0")),
            limit=int(query.get("limit", "100")),
        )
        await send_json(send, 200, {"records": records})


def _is_upstream(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    return path == _UPSTREAM or path.startswith(_UPSTREAM + "/")


def _unprefixed(scope: Scope) -> MutableMapping[str, Any]:
    path = scope["path"][len(_UPSTREAM) :] or "/"
    return {**scope, "path": path, "raw_path": path.encode()}


def _query(scope: Scope) -> dict[str, str]:
    raw = bytes(scope.get("query_string", b"")).decode("latin-1")
    return {name: values[-1] for name, values in parse_qs(raw).items()}
