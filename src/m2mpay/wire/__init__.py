"""Moving channel messages between peers: codecs, transports and authenticated peer links.

- `codec`: protocol-v1 messages to bytes and back (`JsonCodec`, `CborCodec`).
- `transport`: the `Transport`/`Link` interface of raw, ordered, reliable frame
  pipes, with three implementations: `MemoryTransport` (tests),
  `WebSocketTransport` and `MqttTransport`.
- `peer_link`: `open_peer_link` turns any link into a `PeerLink` bound to the
  peer's address, with every later frame authenticated.
"""

from m2mpay.wire.codec import CODECS, MAX_MESSAGE_SIZE, CborCodec, Codec, JsonCodec, codec_by_name
from m2mpay.wire.handshake import UNKNOWN_CHAIN
from m2mpay.wire.memory import MemoryLink, MemoryTransport
from m2mpay.wire.mqtt import MqttTransport
from m2mpay.wire.peer_link import PeerLink, open_peer_link
from m2mpay.wire.transport import MAX_FRAME_SIZE, FrameData, Link, Transport, open_transport
from m2mpay.wire.websocket import WebSocketLink, WebSocketTransport

__all__ = [
    "CODECS",
    "MAX_FRAME_SIZE",
    "MAX_MESSAGE_SIZE",
    "UNKNOWN_CHAIN",
    "CborCodec",
    "Codec",
    "FrameData",
    "JsonCodec",
    "Link",
    "MemoryLink",
    "MemoryTransport",
    "MqttTransport",
    "PeerLink",
    "Transport",
    "WebSocketLink",
    "WebSocketTransport",
    "codec_by_name",
    "open_peer_link",
    "open_transport",
]
