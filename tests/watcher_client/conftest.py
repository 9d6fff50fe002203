"""The client side is tested against the real watcher of `tests.watcher`: the same
embedded-ledger world, watchers served over HTTP, and nodes to feed them."""

from __future__ import annotations

from tests.watcher.conftest import make_node, start_watcher, world

__all__ = ["make_node", "start_watcher", "world"]
