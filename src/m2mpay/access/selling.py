"""Selling a feed: its offer, the check of a buyer's sealed credentials before any
money moves, and the device of each session, a grant on the broker.

A feed is sold by the second in metered sessions where the payer goes first: the
buyer prepays (up to the feed's longest purchase), the seller's `SessionManager`
permits what was paid, and `GrantSupply` turns the permit into read access on the
live topic until the paid time ends (`m2mpay.access.grant`). The buyer names the
MQTT client it will read with by sealing a username and password to the seller's
access key and sending them as the session's supply terms; the seller opens them,
refuses a name another session holds, and makes the client on the broker.

A feed may also be sold by the message, under a second offer (`publish_per_message`):
the node relays the live topic to each such buyer's own topic and counts the messages
(`m2mpay.access.relay`).
"""

from __future__ import annotations

from dataclasses import dataclass

from m2mpay.access.feeds import Feed
from m2mpay.access.grant import GrantPhase
from m2mpay.access.keeper import GrantedSupply, GrantKeeper
from m2mpay.access.relay import (
    MESSAGE_UNIT,
    FeedRelay,
    MessageSupply,
    message_offer,
    relay_topic,
)
from m2mpay.access.sealed import Credentials, access_private_key, open_sealed, sealed_context
from m2mpay.crypto import Address, PrivateKey
from m2mpay.engine import now_ms
from m2mpay.errors import AccessError
from m2mpay.stream import Leader, Offer, ServiceKind, SessionManager, new_offer
from m2mpay.stream.supply import MeterReport, Supply, SupplyFactory, SupplyRequest, SupplyVet

__all__ = ["FeedSeller", "GrantSupply", "SoldFeed", "feed_offer"]

# Names the node gives its own clients (the admin, the devices): never a buyer's.
RESERVED_PREFIX = "m2mpay-"
REPORT_EVERY_S = 10  # a delivery report (and a receipt's granularity) every so many seconds


def feed_offer(feed: Feed, seller: Address, valid_for_s: int = 10 * 365 * 86_400) -> Offer:
    """The offer a feed is sold under: seconds, paid first, at most the longest purchase
    paid ahead (so a buyer can prepay all it buys), at least the shortest bought."""
    return new_offer(
        seller,
        ServiceKind.DATA,
        "s",
        feed.price_per_second,
        feed.asset,
        window=feed.max_seconds,
        batch=min(REPORT_EVERY_S, feed.max_seconds),
        leader=Leader.PAYER,
        min_units=feed.min_seconds,
        max_units=feed.max_seconds,
        valid_for_s=valid_for_s,
    )


@dataclass(frozen=True, slots=True)
class SoldFeed:
    feed: Feed
    offer: Offer


class GrantSupply(GrantedSupply):
    """The device of one session on a feed: a grant, metered by the clock."""

    async def start(self, report: MeterReport, delivered: int) -> None:
        await self._open_grant()
        self._keeper.attach(self.session_id, report)

    def permit(self, units: int) -> None:
        self._keeper.permit(self.session_id, units)

    async def stop(self) -> None:
        self._keeper.end(self.session_id)

    async def suspend(self) -> None:
        # The grant's paid time runs on while the node is down; its keeper revokes it
        # at the end, after the restart if need be.
        self._keeper.detach(self.session_id)

    @property
    def delivered(self) -> int:
        grant = self._keeper.grant(self.session_id)
        return grant.used_s(now_ms()) if grant is not None else 0

    @property
    def live(self) -> bool:
        grant = self._keeper.grant(self.session_id)
        return grant is not None and grant.phase is GrantPhase.LIVE


class FeedSeller:
    """A node's feeds, sold through its session manager; see the module docstring."""

    def __init__(self, sessions: SessionManager, keeper: GrantKeeper, key: PrivateKey) -> None:
        self._sessions = sessions
        self._keeper = keeper
        self._access_key = access_private_key(key)
        self._feeds: dict[bytes, SoldFeed] = {}
        self._relays: dict[str, FeedRelay] = {}  # by device: one relay a feed

    def publish(self, feed: Feed, offer: Offer | None = None) -> SoldFeed:
        """Sell `feed` under a new offer, or under `offer` again (its offer before a
        restart, so that the sessions resumed on it find their grants)."""
        offer = offer or feed_offer(feed, self._sessions.node.address)
        sold = SoldFeed(feed, offer)
        device = self._relayed(feed) if offer.unit == MESSAGE_UNIT else self._device(feed)
        self._sessions.publish(offer, device, self._vet(feed))
        self._feeds[offer.offer_id] = sold
        return sold

    def publish_per_message(self, feed: Feed, price_per_message: int) -> SoldFeed:
        """Sell `feed` by the message too, under a second offer (see the module docstring);
        its offer is published again after a restart with `publish`."""
        if price_per_message <= 0:
            raise AccessError("bad_feed", "the price per message must be positive")
        return self.publish(
            feed, message_offer(feed, self._sessions.node.address, price_per_message)
        )

    def relaying(self, session_id: bytes) -> bool:
        """Whether a per-message session is counting messages: its buyer's relay topic
        is open and a relay passes messages on to it."""
        return any(relay.relays_session(session_id) for relay in self._relays.values())

    async def close(self) -> None:
        """Stop relaying (the node stops): the per-message sessions resume after it."""
        relays, self._relays = self._relays, {}
        for relay in relays.values():
            await relay.close()

    def retire(self, offer_id: bytes) -> None:
        """Sell no more of a feed; running grants go on to their end."""
        self._feeds.pop(offer_id, None)
        self._sessions.withdraw(offer_id)

    def feeds(self) -> list[SoldFeed]:
        return list(self._feeds.values())

    def _credentials(self, feed: Feed, request: SupplyRequest) -> Credentials:
        context = sealed_context(request.peer, feed.device_id, request.session_id)
        return open_sealed(self._access_key, request.terms, context)

    def _vet(self, feed: Feed) -> SupplyVet:
        def vet(request: SupplyRequest) -> str | None:
            try:
                credentials = self._credentials(feed, request)
            except AccessError as exc:
                return exc.message
            name = credentials.username
            if name.startswith(RESERVED_PREFIX):
                return f"client names starting with {RESERVED_PREFIX!r} are the node's own"
            holder = self._keeper.holder(name)
            if holder is not None and holder != request.session_id:
                return "that client name is taken: choose another"
            self._keeper.reserve(name, request.session_id)
            return None

        return vet

    def _device(self, feed: Feed) -> SupplyFactory:
        def device(request: SupplyRequest) -> Supply:
            return GrantSupply(
                self._keeper, request, self._credentials(feed, request), feed.live_topic
            )

        return device

    def _relayed(self, feed: Feed) -> SupplyFactory:
        def device(request: SupplyRequest) -> Supply:
            relay = self._relays.get(feed.device_id)
            if relay is None:
                relay = self._relays[feed.device_id] = FeedRelay(self._keeper.broker, feed)
            topic = relay_topic(feed, request.session_id)
            credentials = self._credentials(feed, request)
            return MessageSupply(self._keeper, relay, request, credentials, topic)

        return device
