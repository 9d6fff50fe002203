"""The link-level header and topic scheme of the MQTT transport.

Topics ("topic per peer"): a transport bound to address X subscribes to
``m2mpay/v1/<x>/in/+``; a frame from Y to X is published (QoS 1) on
``m2mpay/v1/<x>/in/<y>``, where addresses are ``0x`` + 40 lowercase hex digits.
The sender's address is read from the topic and is *not* proven by anything
(any client of the broker may publish anywhere): the peer link above proves
identities, and broker ACLs can restrict who publishes on ``…/in/<y>``.

Every MQTT payload starts with a 26-byte header:

    version  u8   1
    kind     u8   OPEN=1, ACCEPT=2, DATA=3, CLOSE=4
    instance 8 B  random id of the sending transport, new at every start
    link     8 B  random id chosen by the side that opened the link
    seq      u64  big-endian; DATA/CLOSE: per-direction counter from 0
    payload       DATA only: the frame (at most `MAX_FRAME_SIZE` bytes)

- OPEN (initiator → responder) asks for a new link; ACCEPT answers it. A
  duplicate OPEN (a redelivery) is answered again and opens nothing.
- DATA frames carry consecutive `seq`; the receiver drops duplicates (QoS 1
  redelivers) and holds early frames until the gap fills, so order is kept.
  A gap that never fills (a broker that dropped messages) breaks the link.
- CLOSE carries the number of DATA frames sent before it, so the peer
  delivers all of them before it reports the close.
- A frame whose `instance` differs from the one a peer used so far means the
  peer's transport restarted: its old links are dead and are closed (their
  `recv` raises `ConnectionClosed`) before the new link is accepted. Several
  links from one running peer coexist, told apart by their link id.

A transport that dies without closing its links is noticed through its MQTT
will: the broker publishes the dead transport's `instance` on
``m2mpay/v1/<address>/gone``, which every transport linked to that address
subscribes to, and the links to that instance break.

Endpoints are ``mqtt://HOST:PORT/<address>``: the broker and the peer's inbox.

A transport holds at most `max_incoming` incoming links at once (1,024 by
default): since anyone may publish OPENs under any address, OPENs past the bound
are neither answered nor remembered, and what a transport kept for a peer (its
instance, the subscription to its will) is dropped with the peer's last link.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from m2mpay.crypto import Address
from m2mpay.errors import InvalidAddress, TransportError
from m2mpay.wire.transport import MAX_FRAME_SIZE

__all__ = [
    "HEADER",
    "MAX_PAYLOAD_SIZE",
    "TOPIC_ROOT",
    "FrameKind",
    "Header",
    "address_topic_part",
    "gone_sender",
    "gone_topic",
    "inbox_filter",
    "pack",
    "parse_mqtt_endpoint",
    "sender_of",
    "topic_to",
    "unpack",
]

TOPIC_ROOT: Final = "m2mpay/v1"
HEADER: Final = struct.Struct(">BB8s8sQ")
MAX_PAYLOAD_SIZE: Final = HEADER.size + MAX_FRAME_SIZE
"""Largest MQTT payload taken: a header and a frame as large as any link carries."""
_VERSION: Final = 1


class FrameKind(enum.IntEnum):
    OPEN = 1
    ACCEPT = 2
    DATA = 3
    CLOSE = 4


@dataclass(frozen=True, slots=True)
class Header:
    kind: FrameKind
    instance: bytes
    link: bytes
    seq: int


def address_topic_part(address: Address) -> str:
    return "0x" + address.hex()


def inbox_filter(own: Address) -> str:
    """The subscription of the transport bound to `own`."""
    return f"{TOPIC_ROOT}/{address_topic_part(own)}/in/+"


def gone_topic(address: Address) -> str:
    """Where the broker announces that the transport bound to `address` died (its will)."""
    return f"{TOPIC_ROOT}/{address_topic_part(address)}/gone"


def gone_sender(topic: str) -> Address | None:
    """The address a will notice on `topic` is about, or None if it is no will notice."""
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_ROOT or parts[3] != "gone":
        return None
    return _address_part(parts[2])


def _address_part(text: str) -> Address | None:
    if len(text) != 42 or not text.startswith("0x") or text != text.lower():
        return None
    try:
        return Address(text)
    except InvalidAddress:
        return None


def topic_to(peer: Address, own: Address) -> str:
    """Where `own` publishes frames for `peer`."""
    return f"{TOPIC_ROOT}/{address_topic_part(peer)}/in/{address_topic_part(own)}"


def sender_of(topic: str, own: Address) -> Address | None:
    """The claimed sender of a frame that arrived on `topic`, or None if the topic is not ours."""
    prefix = f"{TOPIC_ROOT}/{address_topic_part(own)}/in/"
    if not topic.startswith(prefix):
        return None
    return _address_part(topic[len(prefix) :])


def pack(kind: FrameKind, instance: bytes, link: bytes, seq: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(_VERSION, kind, instance, link, seq) + payload


def unpack(data: bytes) -> tuple[Header, bytes] | None:
    """The header and payload of an MQTT payload, or None for anything else (ignored)."""
    # A broker passes on payloads of up to 256 MB; no peer of ours sends one above
    # the link limit, so a larger one is dropped before anything holds it.
    if not HEADER.size <= len(data) <= MAX_PAYLOAD_SIZE:
        return None
    version, kind, instance, link, seq = HEADER.unpack_from(data)
    if version != _VERSION or kind not in FrameKind._value2member_map_:
        return None
    if kind != FrameKind.DATA and len(data) != HEADER.size:
        return None
    return Header(FrameKind(kind), instance, link, seq), data[HEADER.size :]


def parse_mqtt_endpoint(endpoint: str) -> tuple[str, int, Address]:
    """(broker host, broker port, peer address) of ``mqtt://HOST:PORT/<address>``."""
    parts = urlsplit(endpoint)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise TransportError(f"not an MQTT endpoint: {endpoint!r}")
    try:
        return parts.hostname, parts.port or 1883, Address(parts.path.strip("/"))
    except (InvalidAddress, ValueError):
        raise TransportError(
            f"MQTT endpoint must end with the peer's address: {endpoint!r}"
        ) from None
