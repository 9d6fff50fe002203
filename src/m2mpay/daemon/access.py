"""Paid MQTT access in the node process: the broker, its administrator, the grant
keeper, the feeds sold and bought.

`PaidAccess.start()` brings up the broker (the node's own Mosquitto in
`<data_dir>/mqtt/`, started in a thread as it blocks, or a broker given by URL and
admin credentials, of which only our own clients and roles are ever touched), makes
it deny by default with the feeds' averages (`m2m/+/1m`) public, and starts the
`GrantKeeper` on `grants.sqlite3`, which revokes what ended while the node was down.
The node's own broker dies with the node (`m2mpay.access.tether`), so no grant
outlives it; a broker given by URL does not, which start-up warns about.
`sell(sessions)` then publishes the feeds of `feeds.json` again, under their old
offers, and must run before the session manager starts, so that resumed sessions
find their grants. `stop()` undoes it in reverse order.

With MQTT switched off the node still buys feeds (the book of its purchases is
kept), but sells none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from m2mpay.access.broker import Broker
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.dynsec_file import withdraw_reads
from m2mpay.access.feed_book import FeedBook
from m2mpay.access.keeper import GrantKeeper
from m2mpay.access.mosquitto import BrokerAddress, ManagedMosquitto
from m2mpay.access.selling import FeedSeller
from m2mpay.api.gateway import FeedDesk
from m2mpay.crypto import PrivateKey
from m2mpay.errors import AccessError, M2MPayError
from m2mpay.store import open_store
from m2mpay.stream import SessionManager

__all__ = ["PUBLIC_TOPICS", "MqttConfig", "PaidAccess"]

log = logging.getLogger("m2mpay.daemon")

PUBLIC_TOPICS = ("m2m/+/1m",)  # every feed's free average


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Which broker the node sells access on: none (`enabled` False), one given by
    `url` (``mqtt://host:port``) and its administrator's credentials, or by default
    its own on `host` and `port` (0: the port it used last time, else a free one)."""

    enabled: bool = True
    url: str | None = None
    admin_username: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 0


class PaidAccess:
    """See the module docstring."""

    def __init__(self, data_dir: Path, key: PrivateKey, config: MqttConfig) -> None:
        self._data_dir = data_dir
        self._key = key
        self._config = config
        self.book = FeedBook(data_dir / "feeds.json")
        self.desk: FeedDesk | None = None
        self._broker: Broker | None = None
        self._address: BrokerAddress | None = None
        self._keeper: GrantKeeper | None = None
        self._started = contextlib.AsyncExitStack()

    async def start(self) -> None:
        saved = self.book.load()
        if not self._config.enabled:
            if saved:
                log.warning(
                    "MQTT is off: the %d feed(s) of %s are not sold until it is on again",
                    len(saved),
                    self.book.path,
                )
            return
        started = self._started
        address = await self._broker_address()
        broker = self._broker = DynsecBroker(address)
        started.push_async_callback(broker.stop)
        await broker.start()
        await broker.prepare()
        await broker.set_public(list(PUBLIC_TOPICS))
        self._address = address
        keeper = self._keeper = GrantKeeper(broker, open_store(self._data_dir / "grants.sqlite3"))
        started.push_async_callback(keeper.stop)
        await keeper.start()

    async def _broker_address(self) -> BrokerAddress:
        config = self._config
        if config.url is not None:
            address = BrokerAddress.parse(
                config.url, config.admin_username or "", config.admin_password or ""
            )
            # Our own broker dies with the node (fail closed); a broker we were given
            # cannot be made to, and the node is the only one who revokes its grants.
            log.warning(
                "MQTT broker %s is not the node's own: if the node dies, the grants on it "
                "stay readable until the node is back and revokes those that ended",
                address.url,
            )
            return address
        # It starts with no client reading until the keeper gives back what is paid.
        own = ManagedMosquitto(
            self._data_dir,
            host=config.host,
            port=config.port or None,
            before_start=withdraw_reads,
        )

        async def stop_own() -> None:
            await asyncio.to_thread(own.stop)

        self._started.push_async_callback(stop_own)  # a start failing half-way stops it too
        try:
            await asyncio.to_thread(own.start)
        except AccessError as exc:
            if exc.code != "broker_missing":
                raise
            raise AccessError(
                exc.code, f"{exc.message}; or run the node without MQTT data (--no-mqtt)"
            ) from None
        return own.address

    def sell(self, sessions: SessionManager) -> FeedDesk | None:
        """Sell through `sessions` (not started yet): the saved feeds again, under their
        offers; the desk the API sells and grants through (None with MQTT off)."""
        if self._keeper is None or self._broker is None or self._address is None:
            return None
        seller = FeedSeller(sessions, self._keeper, self._key)
        # Its relays stop first, before the keeper and the broker's administrator.
        self._started.push_async_callback(seller.close)
        address = self._address
        broker_at = f"{address.host}:{address.port}"
        for sold in self.book.sold():
            # The offer names no broker: a broker that moved is the feed's new one.
            feed = replace(sold.feed, broker=broker_at)
            try:
                again = seller.publish(feed, sold.offer)
            except M2MPayError as exc:  # e.g. an offer that has run out
                log.warning("feed of %s not published again: %s", feed.device_id, exc)
                self.book.remove_sold(sold.offer.offer_id)
                continue
            if feed != sold.feed:
                self.book.add_sold(again)
        self.desk = FeedDesk(seller, self._keeper, self._broker, broker_at)
        return self.desk

    async def stop(self) -> None:
        """The keeper, the administrator, then our broker."""
        try:
            await self._started.aclose()
        finally:
            self.desk = None
            self._keeper = self._broker = self._address = None
