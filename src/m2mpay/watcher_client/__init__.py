"""A node's side of a watcher: reaching one, and keeping it up to date.

The watchtower service itself is `m2mpay.watcher`; this package sits above it and
above `m2mpay.node`, which the service does not import.

- `WatcherClient`: the aiohttp client of the watcher's HTTP API; `WatcherUnavailable`
  when it cannot be reached (its refusals are the service's own classes).
- `WatcherFeed`: keeps a watcher up to date for one node (registrations, newest
  proofs); `LocalWatchtower` and `HttpWatchtower` meet the node layer's `Watchtower`
  interface, which a device's host also meets by relaying (`m2mpay.node.host`).
"""

from m2mpay.watcher_client.client import ProofStored, WatcherClient, WatcherInfo
from m2mpay.watcher_client.errors import WatcherUnavailable, refusal_for
from m2mpay.watcher_client.feed import FeedChannel, FeedConfig, WatcherFeed
from m2mpay.watcher_client.towers import HttpWatchtower, LocalWatchtower, as_watchtower

__all__ = [
    "FeedChannel",
    "FeedConfig",
    "HttpWatchtower",
    "LocalWatchtower",
    "ProofStored",
    "WatcherClient",
    "WatcherFeed",
    "WatcherInfo",
    "WatcherUnavailable",
    "as_watchtower",
    "refusal_for",
]
