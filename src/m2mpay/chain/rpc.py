"""`RpcLedger`: any EVM node over JSON-RPC (Anvil, Geth, Besu, an L2, Energy Web, IOTA EVM)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import RPCEndpoint, RPCResponse

from m2mpay.chain.web3_ledger import Web3Ledger
from m2mpay.crypto import PrivateKey
from m2mpay.errors import LedgerUnavailable, UnsupportedOperation

__all__ = ["RpcLedger"]

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


class _Provider(AsyncHTTPProvider):
    """Says that the node cannot be reached in the ledger's terms (`LedgerUnavailable`),
    not aiohttp's, so that callers that wait an outage out recognise it."""

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return await super().make_request(method, params)
        except (OSError, TimeoutError) as exc:
            raise LedgerUnavailable(f"cannot reach {self.endpoint_uri}: {exc}") from exc


class RpcLedger(Web3Ledger):
    """A JSON-RPC node by URL.

    Receipts are polled every 2 ms on a loopback node (web3's default 100 ms
    poll would add that much to every transaction) and every second elsewhere.
    """

    def __init__(
        self,
        url: str,
        *,
        dev_keys: Sequence[PrivateKey] = (),
        receipt_poll_interval: float | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        if urlparse(url).scheme not in ("http", "https"):
            raise LedgerUnavailable(f"RPC URL must be http(s)://…, got {url!r}")
        local = _is_loopback(url)
        poll = (
            receipt_poll_interval
            if receipt_poll_interval is not None
            else (0.002 if local else 1.0)
        )
        super().__init__(
            receipt_poll_interval=poll,
            block_poll_interval=0.05 if local else 2.0,
            dev_keys=dev_keys,
        )
        self._url = url
        self._timeout = request_timeout
        self._provider: AsyncHTTPProvider | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def description(self) -> str:
        return f"JSON-RPC node at {self._url}"

    async def _connect(self) -> AsyncWeb3[Any]:
        self._provider = _Provider(self._url, request_kwargs={"timeout": self._timeout})
        return AsyncWeb3(self._provider)

    async def _disconnect(self) -> None:
        if self._provider is not None:
            await self._provider.disconnect()
            self._provider = None

    async def start(self) -> None:
        try:
            await super().start()
        except LedgerUnavailable:
            raise
        except OSError as exc:
            raise LedgerUnavailable(f"cannot reach {self._url}: {exc}") from exc

    async def advance_time(self, seconds: int) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        response = await self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
        if "error" in response:
            raise UnsupportedOperation(
                f"{self.description} cannot move its clock: {response['error']}"
            )
        await self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
