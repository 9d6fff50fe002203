"""Whether a buyer's client can read its live topic yet, asked as the buyer would.

A purchase is answered when the seller runs its session; the seller makes the
buyer's client and grants it the topic a moment later, once the prepayment is
durable there. The buyer's node waits for that moment by logging in with the
credentials it sealed and subscribing to the live topic until the broker accepts
the subscription (its SUBACK succeeds), so that a `mosquitto_sub` started on the
answer reads at once.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from typing import Final

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from m2mpay.access.sealed import Credentials

__all__ = ["wait_readable"]

RETRY_S: Final = 0.05


def _refused(code: int | ReasonCode) -> bool:
    """Whether a SUBACK refused a subscription (0x80 and above; MQTT 3.1.1 and 5)."""
    return (code.value if isinstance(code, ReasonCode) else code) >= 0x80


async def _subscribed(
    host: str, port: int, credentials: Credentials, topic: str, timeout: float
) -> bool:
    try:
        async with aiomqtt.Client(
            host,
            port,
            username=credentials.username,
            password=credentials.password,
            # Not the buyer's own client id, whose persistent session this would end.
            identifier=f"m2mpay-check-{secrets.token_hex(6)}",
            clean_session=True,
            timeout=timeout,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        ) as client:
            granted = await client.subscribe(topic, qos=1, timeout=timeout)
            return not any(_refused(code) for code in granted)
    except aiomqtt.MqttError:  # not authorised yet: the client is not made
        return False


async def wait_readable(
    host: str, port: int, credentials: Credentials, topic: str, timeout: float
) -> bool:
    """True once `credentials` may subscribe to `topic` on the broker at `host`:`port`;
    False if that did not happen within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # A deadline, not a cancellation: the MQTT client turns a cancelled connect into an
    # `MqttError`, which would hide it from `asyncio.timeout` and loop for ever. The
    # broker says nothing when a client is made or granted: ask again.
    while (left := deadline - loop.time()) > 0:
        if await _subscribed(host, port, credentials, topic, max(0.1, min(left, 5.0))):
            return True
        await asyncio.sleep(min(RETRY_S, max(0.0, deadline - loop.time())))
    return False
