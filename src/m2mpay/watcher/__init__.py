"""The watchtower: defends channels of parties who are offline.

A party registers its channel with a watcher (`POST /v1/registrations`, signed
`WatchRegistration`) and hands it each newer balance proof its peer signed
(`PUT /v1/channels/{id}/proofs/{party}`). The watcher follows the hub; when a watched
channel is closed with a smaller total it challenges with the held proof before the
deadline, and settles after it so the money reaches the parties.

- `Watcher`: the service (state, durability, chain duty); `WatcherServer`: its HTTP
  API under uvicorn; `create_app`: the FastAPI app alone.
- `core`: the pure rules (`apply_event`, `plan`), tested without chain or network.

A node's side of a watcher (its HTTP client, the feed that keeps it up to date, the
node layer's `Watchtower` met by a watcher) is `m2mpay.watcher_client`, a layer up:
the service does not import the node.
"""

from m2mpay.watcher.api import create_app, create_asgi
from m2mpay.watcher.core import (
    ChainTime,
    ChainView,
    Challenge,
    ChannelParams,
    HeldProof,
    Phase,
    Settle,
    apply_event,
    plan,
)
from m2mpay.watcher.errors import (
    InvalidInput,
    NotFound,
    StaleSubmission,
    Unauthorized,
    WatcherRefusal,
)
from m2mpay.watcher.server import WatcherServer
from m2mpay.watcher.service import Watcher, WatcherConfig

__all__ = [
    "ChainTime",
    "ChainView",
    "Challenge",
    "ChannelParams",
    "HeldProof",
    "InvalidInput",
    "NotFound",
    "Phase",
    "Settle",
    "StaleSubmission",
    "Unauthorized",
    "Watcher",
    "WatcherConfig",
    "WatcherRefusal",
    "WatcherServer",
    "apply_event",
    "create_app",
    "create_asgi",
    "plan",
]
