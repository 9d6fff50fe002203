"""`WatcherClient`: a party's (or a node's) side of the watcher's HTTP API, on aiohttp.

One keep-alive session per client: `update` is a single PUT on a pooled connection and
is safe to call concurrently, so a node can push a proof after each durable batch
without waiting for the previous push. Refusals come back as the same typed errors the
service raises (`m2mpay.watcher.errors`); a watcher that cannot be reached or fails on
its side raises `WatcherUnavailable` (`m2mpay.watcher_client.errors`); an answer that
is not what the API writes (not JSON, a missing field, more than `MAX_ANSWER_BYTES`)
raises `MalformedMessage`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson

from m2mpay.chain.hub import OnchainChannel
from m2mpay.channel.context import Signer
from m2mpay.crypto import Address, Signature
from m2mpay.errors import CryptoError, MalformedMessage
from m2mpay.lifecycle import Openable
from m2mpay.node.watch import TowerIdentity
from m2mpay.watcher.core import ChannelParams
from m2mpay.watcher.state import params_json
from m2mpay.watcher_client.errors import WatcherUnavailable, refusal_for

__all__ = ["MAX_ANSWER_BYTES", "ProofStored", "WatcherClient", "WatcherInfo"]

MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
"""Largest answer read from a watcher (its dispute list is the longest)."""


@dataclass(frozen=True, slots=True)
class WatcherInfo:
    address: Address
    chain: str
    chain_id: int
    hub: Address
    channels: int
    proofs: int
    registrations: int
    disputes: int
    cursor: int


@dataclass(frozen=True, slots=True)
class ProofStored:
    channel_id: bytes
    party: Address
    transferred: int


def _channel_hex(channel_id: bytes | str) -> str:
    if isinstance(channel_id, bytes):
        return "0x" + channel_id.hex()
    return channel_id if channel_id.startswith("0x") else "0x" + channel_id


class WatcherClient(Openable):
    """Talks to the watcher at `url` (e.g. `http://127.0.0.1:8700`)."""

    def __init__(self, url: str, *, timeout: float = 30.0, connections: int = 100) -> None:
        self._url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._info: WatcherInfo | None = None

    async def open(self) -> None:
        """Open the pooled session now; the first request would open it anyway."""
        self._open()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        data = None if body is None else orjson.dumps(body)
        send_headers = {"Content-Type": "application/json"} if data is not None else {}
        if headers:
            send_headers.update(headers)
        try:
            async with self._open().request(
                method, self._url + path, data=data, headers=send_headers
            ) as response:
                status = response.status
                raw = await _read_bounded(response, f"{method} {path}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise WatcherUnavailable(f"{method} {self._url}{path}: {exc!r}") from exc
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            if status < 300:
                raise MalformedMessage(
                    f"{method} {path}: the watcher's answer is not JSON"
                ) from None
            payload = None
        if status < 300:
            return payload
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            raise WatcherUnavailable(f"{method} {path}: HTTP {status}", status=status)
        code, message = str(error.get("code")), str(error.get("message"))
        if status >= 500:
            raise WatcherUnavailable(f"{code}: {message}", status=status, code=code)
        field = error.get("field")
        raise refusal_for(status, code, message, None if field is None else str(field))

    async def info(self) -> WatcherInfo:
        raw = await self._request("GET", "/v1/info")
        with _answer_shape("GET /v1/info"):
            self._info = WatcherInfo(
                address=Address(raw["address"]),
                chain=str(raw["chain"]),
                chain_id=_integer(raw["chain_id"]),
                hub=Address(raw["hub"]),
                channels=_integer(raw["channels"]),
                proofs=_integer(raw["proofs"]),
                registrations=_integer(raw["registrations"]),
                disputes=_integer(raw["disputes"]),
                cursor=_integer(raw["cursor"]),
            )
        return self._info

    async def register(
        self,
        channel: ChannelParams | OnchainChannel,
        signer: Signer,
        *,
        issued_at: int | None = None,
    ) -> str:
        """Sign a WatchRegistration for `signer` (a party) and register; returns the token.

        The registration is bound to this watcher's address, its hub and chain, read
        once from `/v1/info`.
        """
        info = self._info or await self.info()
        params = (
            channel
            if isinstance(channel, ChannelParams)
            else ChannelParams(
                channel.a, channel.b, channel.token, channel.challenge_period, channel.nonce
            )
        )
        issued_at = int(time.time()) if issued_at is None else issued_at
        identity = TowerIdentity(info.address, info.chain_id, info.hub)
        digest = identity.registration_digest(params.id, signer.address, issued_at)
        return await self.register_signed(
            params, signer.address, issued_at, signer.sign_digest(digest)
        )

    async def register_signed(
        self, params: ChannelParams, party: Address, issued_at: int, signature: Signature
    ) -> str:
        """Register with a registration the party signed elsewhere (a relay's case);
        returns the token."""
        body = {
            "channel": params_json(params),
            "party": party.checksum,
            "issued_at": issued_at,
            "signature": "0x" + bytes(signature).hex(),
        }
        created = await self._request("POST", "/v1/registrations", body=body)
        with _answer_shape("POST /v1/registrations"):
            token = created["token"]
            if not isinstance(token, str):
                raise TypeError("the token is not text")
        return token

    async def update(
        self,
        channel_id: bytes | str,
        party: Address | str,
        token: str,
        transferred: int,
        signature: Signature | bytes | str,
    ) -> ProofStored:
        """Hand over the newest proof `party`'s peer signed; returns once it is durable."""
        sig_hex = signature if isinstance(signature, str) else "0x" + bytes(signature).hex()
        channel_hex = _channel_hex(channel_id)
        party_text = party.checksum if isinstance(party, Address) else party
        await self._request(
            "PUT",
            f"/v1/channels/{channel_hex}/proofs/{party_text}",
            body={"transferred": str(transferred), "signature": sig_hex},
            headers={"Authorization": f"Bearer {token}"},
        )
        # A 200 answer echoes what was sent: no need to parse it back on the hot path.
        return ProofStored(bytes.fromhex(channel_hex[2:]), Address(party), transferred)

    async def channel(self, channel_id: bytes | str) -> dict[str, Any]:
        """What the watcher knows of a channel (the `ChannelView` shape of the API)."""
        view: dict[str, Any] = await self._request(
            "GET", f"/v1/channels/{_channel_hex(channel_id)}"
        )
        return view

    async def disputes(self) -> list[dict[str, Any]]:
        """Every challenge and settlement the watcher sent (the `DisputeView` shape)."""
        raw = await self._request("GET", "/v1/disputes")
        with _answer_shape("GET /v1/disputes"):
            disputes: list[dict[str, Any]] = raw["disputes"]
            if not isinstance(disputes, list):
                raise TypeError("disputes is not a list")
        return disputes


async def _read_bounded(response: aiohttp.ClientResponse, what: str) -> bytes:
    if (response.content_length or 0) > MAX_ANSWER_BYTES:
        raise MalformedMessage(f"{what}: an answer of {response.content_length} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise MalformedMessage(f"{what}: the answer runs past {MAX_ANSWER_BYTES} bytes")
    return bytes(body)


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


@contextlib.contextmanager
def _answer_shape(what: str) -> Iterator[None]:
    """`MalformedMessage` for an answer that does not have the API's shape."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, CryptoError) as exc:
        raise MalformedMessage(f"{what}: not the watcher's answer ({exc})"[:300]) from None
