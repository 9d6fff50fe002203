"""Where the node's peers are reached: the endpoint of every peer it had a session
with, kept in the log's meta, so that after a restart the node reconnects to each
and opens a channel to a known peer by its address alone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from m2mpay.crypto import Address
from m2mpay.errors import ChannelError
from m2mpay.node.peers import Peers

__all__ = ["PeerEndpoints"]

_PEER_KEY: Final = "peer:"


class PeerEndpoints:
    def __init__(self, peers: Peers, put_meta: Callable[[str, bytes], None]) -> None:
        self._peers = peers
        self._put_meta = put_meta
        self._known: dict[Address, str] = {}
        peers.on_endpoint(self._remember)

    def restore(self, meta: Mapping[str, bytes]) -> None:
        for meta_key, value in meta.items():
            if meta_key.startswith(_PEER_KEY):
                self._known[Address(meta_key[len(_PEER_KEY) :])] = value.decode()

    def known(self) -> dict[Address, str]:
        """Every peer's endpoint as last learnt."""
        return dict(self._known)

    def keep_connected(self) -> None:
        """Once the peers run: keep a peer link with every peer we know."""
        for peer, endpoint in self._known.items():
            self._peers.keep_connected(peer, endpoint)

    async def reach(self, peer: Address, endpoint: str | None) -> None:
        """A peer link with `peer`, at `endpoint` or where we last reached it, kept from now on."""
        if self._peers.is_connected(peer):
            return
        target = endpoint or self._known.get(peer)
        if target is None:
            raise ChannelError("no_route", f"no peer link with {peer} and no endpoint given")
        await self._peers.connect(target, peer)
        self._peers.keep_connected(peer, target)

    def _remember(self, peer: Address, endpoint: str) -> None:
        if self._known.get(peer) != endpoint:
            self._known[peer] = endpoint
            self._put_meta(_PEER_KEY + peer.checksum, endpoint.encode())
