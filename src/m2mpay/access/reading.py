"""Whether a buyer's client can read its live topic yet, asked as the buyer would.

A purchase is answered when the seller runs its session; the seller makes the
buyer's client and grants it the topic a moment later, once the prepayment is
durable there. The buyer's node waits for that moment by logging in with the
credentials it sealed and subscribing to the live topic until the broker accepts
the subscription (its SUBACK succeeds), so that a `mosquitto_sub` started on the
answer reads at once.

With `session`, the subscription is made under that client id in a persistent session
and left there: the broker keeps what is published on the topic for the client until
it connects with that id (a per-message feed's seller opens its buyer's relay topic
this way, so that no counted message is published before anyone listens).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from typing import Final

import aiomqtt

from m2mpay.access.sealed import Credentials
from m2mpay.access.topics import suback_refused

__all__ = ["wait_readable"]

RETRY_S: Final = 0.05


async def wait_readable(
    host: str,
    port: int,
    credentials: Credentials,
    topic: str,
    timeout: float,
    *,
    session: str | None = None,
) -> bool:
    """True once `credentials` may subscribe to `topic` on the broker at `host`:`port`;
    False if that did not happen within `timeout` seconds. With `session`, the
    subscription stays, for that client id (see the module docstring)."""

    async def subscribed(within: float) -> bool:
        try:
            async with aiomqtt.Client(
                host,
                port,
                username=credentials.username,
                password=credentials.password,
                # Not the buyer's own client id, whose persistent session this would end.
                identifier=session or f"m2mpay-check-{secrets.token_hex(6)}",
                clean_session=session is None,
                timeout=within,
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            ) as client:
                granted = await client.subscribe(topic, qos=1, timeout=within)
                return not any(suback_refused(code) for code in granted)
        except aiomqtt.MqttError:  # not authorised yet: the client is not made
            return False

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # A deadline, not a cancellation: the MQTT client turns a cancelled connect into an
    # `MqttError`, which would hide it from `asyncio.timeout` and loop for ever. The
    # broker says nothing when a client is made or granted: ask again.
    while (left := deadline - loop.time()) > 0:
        if await subscribed(max(0.1, min(left, 5.0))):
            return True
        await asyncio.sleep(min(RETRY_S, max(0.0, deadline - loop.time())))
    return False
