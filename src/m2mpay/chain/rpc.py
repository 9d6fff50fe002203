"""`RpcLedger`: any EVM node over JSON-RPC (Anvil, Geth, Besu, an L2, Energy Web, IOTA EVM)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import aiohttp
from eth_typing import URI
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3._utils.http_session_manager import HTTPSessionManager
from web3.types import RPCEndpoint, RPCResponse

from m2mpay.chain.web3_ledger import Web3Ledger
from m2mpay.crypto import PrivateKey
from m2mpay.errors import LedgerUnavailable, UnsupportedOperation

__all__ = ["RpcLedger"]


class _OwnSession(HTTPSessionManager):
    """web3's session manager without its process-wide lock.

    web3 (8.0) takes one `threading.Lock`, shared by every provider in the process, on
    every request, through a thread pool; a request cancelled while waiting for it
    leaves the lock taken for good, and every JSON-RPC call of the process hangs from
    then on (web3.py issue 3867). A node cancels requests whenever it stops a task, so
    each provider here keeps its own session, per event loop, and takes no lock.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    async def async_cache_and_return_session(
        self,
        endpoint_uri: URI,
        session: aiohttp.ClientSession | None = None,
        request_timeout: aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        current = self._sessions.get(loop)
        if current is None or current.closed:
            # As web3 makes them: a fresh connection a request, so a restarted node
            # is never asked over a connection it dropped.
            current = session or aiohttp.ClientSession(
                raise_for_status=True, connector=aiohttp.TCPConnector(force_close=True)
            )
            # A session of a loop that has ended can never be used (nor closed) again.
            self._sessions = {old: s for old, s in self._sessions.items() if not old.is_closed()}
            self._sessions[loop] = current
        return current

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


class _Provider(AsyncHTTPProvider):
    """web3's HTTP provider, whose lost connections are `LedgerUnavailable`: a node that
    restarts is a chain that is away for a while, not a bug of the caller."""

    def __init__(self, endpoint_uri: str, request_kwargs: dict[str, Any]) -> None:
        super().__init__(endpoint_uri, request_kwargs=request_kwargs)
        self._own = _OwnSession()
        self._request_session_manager = self._own

    async def disconnect(self) -> None:
        await self._own.close()

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return await super().make_request(method, params)
        except (OSError, aiohttp.ClientError, TimeoutError) as exc:
            raise LedgerUnavailable(
                f"the JSON-RPC node at {self.endpoint_uri} did not answer {method}: "
                f"{exc or type(exc).__name__}"
            ) from exc


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


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
        self._provider: _Provider | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def description(self) -> str:
        return f"JSON-RPC node at {self._url}"

    async def _connect(self) -> AsyncWeb3[Any]:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        self._provider = _Provider(self._url, request_kwargs={"timeout": timeout})
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
