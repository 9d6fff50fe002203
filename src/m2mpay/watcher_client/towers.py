"""The node layer's `Watchtower` interface, met by a watcher (`m2mpay.watcher`).

`LocalWatchtower` is a `Watcher` in the same process (a host that runs its own
watcher); `HttpWatchtower` is one reached with `WatcherClient`. Both turn the
watcher's refusals into `WatchRefused` of the matching kind, and a watcher that
cannot be reached, or whose answers cannot be read, into `WatchUnavailable`, so that
a feed, or a host relaying for its devices, handles every watcher alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator

from m2mpay.crypto import Address, Signature
from m2mpay.errors import MalformedMessage
from m2mpay.node.watch import (
    ProofUpdate,
    SignedRegistration,
    TowerIdentity,
    WatchErrorKind,
    WatchRefused,
    Watchtower,
    WatchUnavailable,
)
from m2mpay.watcher.core import ChannelParams
from m2mpay.watcher.errors import (
    NotFound,
    StaleSubmission,
    Unauthorized,
    WatcherRefusal,
)
from m2mpay.watcher.service import Watcher
from m2mpay.watcher_client.client import WatcherClient
from m2mpay.watcher_client.errors import WatcherUnavailable

__all__ = ["HttpWatchtower", "LocalWatchtower", "as_watchtower", "refused"]


def refused(exc: WatcherRefusal) -> WatchRefused:
    """The node layer's form of a watcher's refusal."""
    if isinstance(exc, StaleSubmission):
        kind = WatchErrorKind.STALE
    elif isinstance(exc, Unauthorized):
        kind = WatchErrorKind.UNAUTHORIZED
    elif isinstance(exc, NotFound):
        kind = WatchErrorKind.UNKNOWN
    else:
        kind = WatchErrorKind.INVALID
    return WatchRefused(kind, exc.code, exc.message, exc.field)


@contextlib.contextmanager
def _in_node_terms() -> Iterator[None]:
    """A watcher's refusals, and a watcher out of reach, as the node layer's errors."""
    try:
        yield
    except WatcherRefusal as exc:
        raise refused(exc) from None
    except (WatcherUnavailable, MalformedMessage) as exc:
        raise WatchUnavailable(str(exc)) from None


def _params(registration: SignedRegistration) -> ChannelParams:
    return ChannelParams(
        registration.a,
        registration.b,
        registration.asset,
        registration.challenge_period,
        registration.nonce,
    )


_Register = Callable[[ChannelParams, Address, int, Signature], Awaitable[str]]
_Update = Callable[[bytes, Address, str, int, Signature], Awaitable[object]]


class _WatcherTower(Watchtower):
    """A watcher's two doors, registration and proof update, in the node layer's terms."""

    def __init__(self, register: _Register, update: _Update) -> None:
        self._register = register
        self._update = update

    async def register(self, registration: SignedRegistration) -> str:
        with _in_node_terms():
            return await self._register(
                _params(registration),
                registration.party,
                registration.issued_at,
                registration.signature,
            )

    async def update(self, proof: ProofUpdate) -> None:
        with _in_node_terms():
            await self._update(
                proof.channel_id, proof.party, proof.token, proof.transferred, proof.signature
            )


class LocalWatchtower(_WatcherTower):
    """A started `Watcher` in this process."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__(watcher.register, watcher.update)
        self.watcher = watcher

    async def identity(self) -> TowerIdentity:
        return TowerIdentity(self.watcher.address, self.watcher.ledger.chain_id, self.watcher.hub)


class HttpWatchtower(_WatcherTower):
    """A watcher's HTTP API, through `client` (which the caller closes)."""

    def __init__(self, client: WatcherClient) -> None:
        super().__init__(client.register_signed, client.update)
        self.client = client
        self._identity: TowerIdentity | None = None

    async def identity(self) -> TowerIdentity:
        if self._identity is None:
            try:
                info = await self.client.info()
            except (WatcherUnavailable, MalformedMessage) as exc:
                raise WatchUnavailable(str(exc)) from None
            self._identity = TowerIdentity(info.address, info.chain_id, info.hub)
        return self._identity


def as_watchtower(watcher: Watchtower | Watcher | WatcherClient) -> Watchtower:
    """`watcher` as a `Watchtower`: a service in process, an HTTP client, or one already."""
    if isinstance(watcher, Watcher):
        return LocalWatchtower(watcher)
    if isinstance(watcher, WatcherClient):
        return HttpWatchtower(watcher)
    return watcher
