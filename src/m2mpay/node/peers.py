"""A node's authenticated peer links with other nodes: one per peer, kept alive,
with each received message routed by its type to the protocol that owns it.

The channel protocol is one such protocol; metered sessions ride on the same
peer links with message types of their own. A message of a type nobody routed is
answered with a `PeerError` and goes no further.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from m2mpay.channel.messages import PeerError
from m2mpay.channel.outputs import ErrorCode
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import AuthenticationFailed, MalformedMessage, TransportError
from m2mpay.lifecycle import raise_if_cancelling
from m2mpay.wire import UNKNOWN_CHAIN, Codec, Link, PeerLink, Transport, open_peer_link

__all__ = ["MessageHandler", "Peers", "PeersConfig"]

log = logging.getLogger("m2mpay.peers")

MessageHandler = Callable[[Address, Any], None]


@dataclass(frozen=True, slots=True)
class PeersConfig:
    codec: Codec
    handshake_timeout_s: float = 10.0
    reconnect_delay_s: float = 0.5
    reconnect_max_delay_s: float = 10.0


class Peers:
    """Peer links over one transport; see the module docstring."""

    def __init__(
        self,
        key: PrivateKey,
        transport: Transport | None,
        config: PeersConfig,
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        after_message: Callable[[], Awaitable[None]],
    ) -> None:
        self._key = key
        self._transport = transport
        self._config = config
        self._spawn = spawn
        self._after_message = after_message
        self._links: dict[Address, PeerLink] = {}
        self._routes: dict[type, MessageHandler] = {}
        self._on_link: list[Callable[[Address], None]] = []
        self._on_endpoint: list[Callable[[Address, str], None]] = []
        self._kept: set[Address] = set()
        # The genesis hash of the chain this node settles on, named in every handshake
        # (zero until known: then any chain is accepted, and channels check it later).
        self.chain = UNKNOWN_CHAIN

    @property
    def endpoint(self) -> str | None:
        return self._transport.endpoint if self._transport is not None else None

    def route(self, types: Sequence[type], handler: MessageHandler) -> None:
        """Deliver received messages of `types` to `handler(peer, message)`."""
        for message_type in types:
            self._routes[message_type] = handler

    def on_link(self, callback: Callable[[Address], None]) -> None:
        """Call `callback(peer)` whenever a peer link with a peer (re)starts."""
        self._on_link.append(callback)

    def on_endpoint(self, callback: Callable[[Address, str], None]) -> None:
        """Call `callback(peer, endpoint)` when we learn where to dial a peer."""
        self._on_endpoint.append(callback)

    def is_connected(self, peer: Address) -> bool:
        return peer in self._links

    async def start(self) -> None:
        if self._transport is not None:
            await self._transport.start()
            self._spawn(self._accept_loop())

    async def stop(self) -> None:
        for peer_link in list(self._links.values()):
            await peer_link.close()
        self._links.clear()
        if self._transport is not None:
            await self._transport.stop()

    async def connect(self, endpoint: str, peer: Address | None = None) -> Address:
        """Open an authenticated peer link to the node at `endpoint`; returns its address."""
        if self._transport is None:
            raise TransportError("this node has no transport")
        link = await self._transport.connect(endpoint)
        peer_link = await open_peer_link(
            link,
            self._key,
            self._config.codec,
            expected_peer=peer,
            chain=self.chain,
            timeout=self._config.handshake_timeout_s,
        )
        for callback in self._on_endpoint:
            callback(peer_link.peer, endpoint)
        self._attach(peer_link)
        return peer_link.peer

    def keep_connected(self, peer: Address, endpoint: str) -> None:
        """Dial `peer` again whenever its peer link is gone (once per peer)."""
        if peer not in self._kept:
            self._kept.add(peer)
            self._spawn(self._keep_connected(peer, endpoint))

    def send_soon(self, peer: Address, message: Any) -> None:
        """Send one message in the background if the peer has a peer link now: the answer
        to a refused input, which is not logged, so no resync would repeat it."""
        if self.is_connected(peer):
            self._spawn(self._send_one(peer, message))

    async def _send_one(self, peer: Address, message: Any) -> None:
        await self.send(peer, [message])

    async def send(self, peer: Address, messages: Sequence[Any]) -> bool:
        """Send in one batch; False if the peer has no peer link (a resync will catch it up)."""
        peer_link = self._links.get(peer)
        if peer_link is None:
            return False
        try:
            await peer_link.send_many(messages)
        except TransportError as exc:
            log.info("lost the peer link with %s: %s", peer, exc)
            if self._links.get(peer) is peer_link:
                del self._links[peer]
            return False
        return True

    async def _accept_loop(self) -> None:
        assert self._transport is not None
        while True:
            link = await self._transport.accept()
            self._spawn(self._accept_one(link))

    async def _accept_one(self, link: Link) -> None:
        try:
            peer_link = await open_peer_link(
                link,
                self._key,
                self._config.codec,
                chain=self.chain,
                timeout=self._config.handshake_timeout_s,
            )
        except (AuthenticationFailed, MalformedMessage, TransportError) as exc:
            log.info("refused an incoming peer: %s", exc)
            return
        self._attach(peer_link)

    def _attach(self, peer_link: PeerLink) -> None:
        old = self._links.get(peer_link.peer)
        self._links[peer_link.peer] = peer_link
        if old is not None and old is not peer_link:
            self._spawn(old.close())
        self._spawn(self._receive(peer_link))
        for callback in self._on_link:
            callback(peer_link.peer)

    async def _receive(self, peer_link: PeerLink) -> None:
        peer = peer_link.peer
        try:
            while True:
                try:
                    message = await peer_link.recv()
                    handler = self._routes.get(type(message))
                    if handler is None:
                        raise MalformedMessage(f"{type(message).__name__} is not expected here")
                except MalformedMessage as exc:
                    await self.send(peer, [PeerError(ErrorCode.MALFORMED.value, str(exc)[:900])])
                    continue
                handler(peer, message)
                await self._after_message()
        except (TransportError, AuthenticationFailed) as exc:
            log.info("the peer link with %s ended: %s", peer, exc)
        finally:
            if self._links.get(peer) is peer_link:
                del self._links[peer]
            await peer_link.close()

    async def _keep_connected(self, peer: Address, endpoint: str) -> None:
        delay = self._config.reconnect_delay_s
        while True:
            if peer not in self._links:
                try:
                    await self.connect(endpoint, peer)
                    delay = self._config.reconnect_delay_s
                except (TransportError, AuthenticationFailed, MalformedMessage) as exc:
                    log.debug("reconnecting to %s failed: %s", peer, exc)
                    delay = min(delay * 2, self._config.reconnect_max_delay_s)
            # A cancellation that aiomqtt disguised as an error, or that a wait_for inside
            # dropped, must still end the loop, or the node's stop waits on it.
            raise_if_cancelling()
            await asyncio.sleep(delay)
