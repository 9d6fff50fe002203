"""A JSON-RPC endpoint for the embedded chain, so other local processes share it.

Requests go through the same web3 provider stack the in-process ledger uses,
and results are written in standard JSON-RPC form (integers as hex quantities,
bytes as hex data), so a client uses the plain `RpcLedger` — the same code as
against Anvil or a public node.

A web page may read it too (the provenance reader checks anchor proofs with eth_chainId,
eth_getCode, eth_blockNumber, eth_getLogs): every answer allows any origin, and a
preflight for a JSON POST is answered. That is safe because a request a browser sends
for a page (it carries an `Origin`) may call only the read-only methods of
`_READ_ONLY`: without that, any page the user opens could have the chain's unlocked dev
accounts send transactions or move its clock. Processes (no `Origin`) may call anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

import orjson
from aiohttp import web
from eth_abi.abi import encode
from web3.types import RPCEndpoint

from m2mpay.chain.embedded import EmbeddedLedger
from m2mpay.chain.web3_ledger import revert_reason
from m2mpay.errors import LedgerError

__all__ = ["EmbeddedLedgerServer"]

_ERROR_SELECTOR: Final = bytes.fromhex("08c379a0")  # Error(string)
_MAX_BODY: Final = 8 * 1024 * 1024
_READ_ONLY: Final = frozenset(
    (
        "eth_chainId",
        "net_version",
        "eth_blockNumber",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getCode",
        "eth_getLogs",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_call",
        "eth_getBalance",
    )
)
# Anvil's `anvil_mine` at most this many blocks a request: the EVM runs on the loop,
# which a longer run would hold from every other client for seconds.
MAX_MINED_AT_ONCE: Final = 1_000
_CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


def _to_wire(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {key: _to_wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_wire(item) for item in value]
    return str(value)


def _error(request_id: Any, code: int, message: str, data: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class EmbeddedLedgerServer:
    """Serves one started `EmbeddedLedger` over HTTP JSON-RPC on a loopback port."""

    def __init__(self, ledger: EmbeddedLedger, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._ledger = ledger
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise LedgerError("the JSON-RPC server is not running")
        return self._url

    async def start(self) -> str:
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post("/", self._handle)
        app.router.add_route("OPTIONS", "/", self._preflight)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._url = None

    @staticmethod
    async def _preflight(request: web.Request) -> web.Response:
        return web.Response(status=204, headers=_CORS)

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return self._json(_error(None, -32700, "parse error"))
        from_page = "Origin" in request.headers
        if isinstance(body, list):
            results = []
            for item in body:
                results.append(await self._one(item, from_page))
                # Each item may run the EVM without awaiting (a batch of raw
                # transactions): let the loop serve others between items.
                await asyncio.sleep(0)
            return self._json(results)
        return self._json(await self._one(body, from_page))

    @staticmethod
    def _json(payload: Any) -> web.Response:
        return web.Response(
            body=orjson.dumps(payload), content_type="application/json", headers=_CORS
        )

    async def _one(self, request: Any, from_page: bool) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, -32600, "invalid request")
        request_id = request.get("id")
        method: str = request["method"]
        params = request.get("params") or []
        if from_page and method not in _READ_ONLY:
            return _error(request_id, -32601, f"{method} is not open to web pages")
        try:
            if method == "evm_increaseTime":
                seconds = params[0]
                self._ledger.increase_time(
                    int(seconds, 16) if isinstance(seconds, str) else seconds
                )
                return {"jsonrpc": "2.0", "id": request_id, "result": "0x0"}
            if method == "evm_mine":
                self._ledger.mine()
                return {"jsonrpc": "2.0", "id": request_id, "result": "0x0"}
            if method == "anvil_mine":  # empty blocks, as Anvil mines them: a dev chain's
                count = params[0] if params else 1
                blocks = int(count, 16) if isinstance(count, str) else int(count)
                if not 1 <= blocks <= MAX_MINED_AT_ONCE:
                    return _error(
                        request_id, -32602, f"anvil_mine: 1 to {MAX_MINED_AT_ONCE} blocks"
                    )
                self._ledger.mine(blocks)
                return {"jsonrpc": "2.0", "id": request_id, "result": None}
            w3 = self._ledger.w3
            request_func = await w3.provider.request_func(w3, w3.middleware_onion)
            response = await request_func(RPCEndpoint(method), params)
        except Exception as exc:
            reason = revert_reason(exc)
            if reason is not None:
                data = "0x" + (_ERROR_SELECTOR + encode(["string"], [reason])).hex()
                return _error(request_id, 3, f"execution reverted: {reason}", data)
            return _error(request_id, -32000, f"{type(exc).__name__}: {exc}")
        if "error" in response:
            error = response["error"]
            message = error.get("message", str(error)) if isinstance(error, Mapping) else str(error)
            return _error(request_id, -32000, str(message))
        return {"jsonrpc": "2.0", "id": request_id, "result": _to_wire(response.get("result"))}
