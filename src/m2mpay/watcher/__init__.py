"""The watchtower: defends channels of parties who are offline.

A party registers its channel with a watcher (`POST /v1/registrations`, signed
`WatchRegistration`) and hands it each newer balance proof its peer signed
(`PUT /v1/channels/{id}/proofs/{party}`). The watcher follows the hub; when a watched
channel is closed with a smaller total it challenges with the held proof before the
deadline, and settles after it so the money reaches the parties.

- `Watcher`: the service (state, durability, chain duty); `WatcherServer`: its HTTP
  API under uvicorn; `create_app`: the FastAPI app alone.
- `WatcherClient`: the aiohttp client.
- `WatcherFeed`: keeps a watcher up to date for one node (registrations, newest
  proofs); `LocalWatchtower` and `HttpWatchtower` meet the node layer's `Watchtower`
  interface, which a device's host also meets by relaying (`m2mpay.node.host`).
- `core`: the pure rules (`apply_event`, `plan`), tested without chain or network.
"""

from m2mpay.watcher.api import create_app, create_asgi
from m2mpay.watcher.client import DigestSigner, ProofStored, WatcherClient, WatcherInfo
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
    WatcherUnavailable,
)
from m2mpay.watcher.feed import FeedChannel, FeedConfig, WatcherFeed
from m2mpay.watcher.server import WatcherServer
from m2mpay.watcher.service import Watcher, WatcherConfig
from m2mpay.watcher.towers import HttpWatchtower, LocalWatchtower, as_watchtower

__all__ = [
    "ChainTime",
    "ChainView",
    "Challenge",
    "ChannelParams",
    "DigestSigner",
    "FeedChannel",
    "FeedConfig",
    "HeldProof",
    "HttpWatchtower",
    "InvalidInput",
    "LocalWatchtower",
    "NotFound",
    "Phase",
    "ProofStored",
    "Settle",
    "StaleSubmission",
    "Unauthorized",
    "Watcher",
    "WatcherClient",
    "WatcherConfig",
    "WatcherFeed",
    "WatcherInfo",
    "WatcherRefusal",
    "WatcherServer",
    "WatcherUnavailable",
    "apply_event",
    "as_watchtower",
    "create_app",
    "create_asgi",
    "plan",
]
