"""The `Broker` the node administers, and `MemoryBroker`, the one unit tests use.

The node is its broker's only administrator. It keeps clients (a username and a
password), what each may do on each topic filter (`TopicAccess`), and the filters
anyone may read (the free aggregates), anonymous clients included. Everything else
is denied: a client reads or publishes only what an explicit allow lets through.

What the interface promises, on the real broker as here (`tests/access` runs one
conformance suite on both):

- `allow` and `revoke` apply to the messages published after they return, for
  connected clients and offline persistent sessions alike, and never disconnect the
  client: a renewal or a second feed never cuts a paying reader off.
- `remove_client` disconnects the client's sessions; its name may then be reused.
- Passwords are never logged and never read back.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from m2mpay.access.topics import (
    covers,
    matches,
    validate_filter,
    validate_grantable,
    validate_password,
    validate_topic,
    validate_username,
)
from m2mpay.errors import AccessError
from m2mpay.lifecycle import Startable

__all__ = ["Broker", "MemoryBroker", "TopicAccess"]


@dataclass(frozen=True)
class TopicAccess:
    """What one client may do on one topic filter: `read` is subscribe and receive,
    `write` is publish. At least one of them; the filter must be grantable (a literal
    first level, never a `$` topic)."""

    topic: str
    read: bool
    write: bool

    def __post_init__(self) -> None:
        validate_grantable(self.topic)
        if not (self.read or self.write):
            raise AccessError("no_access", "an access reads, writes or both; revoke takes it away")


class Broker(Startable):
    """An MQTT broker whose clients and ACLs the node alone administers.

    `start` reaches the broker (an administrator's connection); `prepare` makes it
    deny by default, and may be called on every start.
    """

    @abstractmethod
    async def prepare(self) -> None:
        """Deny subscribe, publish and receive to every client unless allowed (idempotent)."""

    @abstractmethod
    async def set_public(self, topics: Sequence[str]) -> None:
        """The filters anyone may read, with or without an account; replaces the last set."""

    @abstractmethod
    async def public(self) -> frozenset[str]:
        """The filters anyone may read."""

    @abstractmethod
    async def add_client(self, username: str, password: str) -> None:
        """A new client that may do nothing yet but read the public filters.
        `AccessError("name_taken")` if the username exists."""

    @abstractmethod
    async def remove_client(self, username: str) -> None:
        """Remove the client and disconnect its sessions; nothing if there is none."""

    @abstractmethod
    async def allow(self, username: str, access: TopicAccess) -> None:
        """Let the client do what `access` says on its filter, replacing what it could do
        there before. `AccessError("unknown_client")` if there is no such client."""

    @abstractmethod
    async def revoke(self, username: str, topic: str) -> None:
        """Take back what the client could do on the filter `topic` (nothing if nothing)."""

    @abstractmethod
    async def clients(self) -> frozenset[str]:
        """The usernames of the node's clients."""

    @abstractmethod
    async def access_of(self, username: str) -> frozenset[TopicAccess]:
        """What the client may do, filter by filter (the public filters aside)."""

    @abstractmethod
    async def accesses(self) -> dict[str, frozenset[TopicAccess]]:
        """Each of the node's clients with what it may do (as `clients` and `access_of`
        would answer), read at once: one round trip for all, where the broker has one."""


def check_public(topics: Sequence[str]) -> frozenset[str]:
    """The public filters of `topics`, each grantable."""
    if isinstance(topics, str):
        raise AccessError("bad_topic", "the public filters are a list of filters, not one string")
    return frozenset(validate_grantable(topic) for topic in topics)


def check_new_client(username: str, password: str) -> None:
    validate_username(username)
    validate_password(password)


class MemoryBroker(Broker):
    """A broker in memory, with MQTT matching, for unit tests of the layers above.

    `may_subscribe`, `may_receive` and `may_publish` answer what the real broker would
    do with a client's subscribe, a delivery to it and its publish (`None`: an
    anonymous client).
    """

    def __init__(self) -> None:
        self._passwords: dict[str, str] = {}
        self._access: dict[str, dict[str, TopicAccess]] = {}
        self._public: frozenset[str] = frozenset()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def prepare(self) -> None:
        pass  # it denies by default from the start

    async def set_public(self, topics: Sequence[str]) -> None:
        self._public = check_public(topics)

    async def public(self) -> frozenset[str]:
        return self._public

    async def add_client(self, username: str, password: str) -> None:
        check_new_client(username, password)
        if username in self._passwords:
            raise AccessError("name_taken", f"a client named {username!r} exists")
        self._passwords[username] = password
        self._access[username] = {}

    async def remove_client(self, username: str) -> None:
        validate_username(username)
        self._passwords.pop(username, None)
        self._access.pop(username, None)

    async def allow(self, username: str, access: TopicAccess) -> None:
        self._of(username)[access.topic] = access

    async def revoke(self, username: str, topic: str) -> None:
        validate_filter(topic)
        self._of(username).pop(topic, None)

    async def clients(self) -> frozenset[str]:
        return frozenset(self._passwords)

    async def access_of(self, username: str) -> frozenset[TopicAccess]:
        return frozenset(self._of(username).values())

    async def accesses(self) -> dict[str, frozenset[TopicAccess]]:
        return {name: frozenset(held.values()) for name, held in self._access.items()}

    def _of(self, username: str) -> dict[str, TopicAccess]:
        validate_username(username)
        held = self._access.get(username)
        if held is None:
            raise AccessError("unknown_client", f"no client named {username!r}")
        return held

    # -- what the broker would let through --------------------------------------------

    def logs_in(self, username: str, password: str) -> bool:
        """Whether a client may connect with these credentials."""
        return self._passwords.get(username) == password

    def _readable(self, username: str | None) -> list[str]:
        own = self._access.get(username, {}) if username is not None else {}
        if username is not None and username not in self._passwords:
            return []
        return [*self._public, *(a.topic for a in own.values() if a.read)]

    def may_subscribe(self, username: str | None, topic_filter: str) -> bool:
        validate_filter(topic_filter)
        return any(covers(acl, topic_filter) for acl in self._readable(username))

    def may_receive(self, username: str | None, topic: str) -> bool:
        validate_topic(topic)
        return any(matches(acl, topic) for acl in self._readable(username))

    def may_publish(self, username: str | None, topic: str) -> bool:
        validate_topic(topic)
        if username is None or username not in self._passwords:
            return False
        return any(
            matches(access.topic, topic)
            for access in self._access[username].values()
            if access.write
        )
